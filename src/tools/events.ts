/** The events toolset: what changed in the CRM (record history now; the change feed comes with the event log). */
import { defineTool, UNTRUSTED } from './define.js';
import { RecordHistory, RecordHistoryArgs } from '../domain/history.js';

export const getRecordHistory = defineTool({
  name: 'get_record_history',
  title: 'Get record history',
  description: `What happened to one lead, deal, contact or company, newest first: stage moves (from, to), responsible changes, field changes, who made each (a robot for automation), names beside ids. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'events',
  requires: ['history'],
  input: RecordHistoryArgs,
  output: RecordHistory,
  async handler(args, { provider, ctx }) {
    return provider.recordHistory(ctx, args);
  },
});
