/** The event log that goes with a store (log.ts): the file beside a file store, a Redis Stream, or memory. */
import { dirname, join } from 'node:path';
import type { Store } from '../store/store.js';
import { FileEventLog } from './file-log.js';
import { DEFAULT_RETENTION, type EventLog } from './log.js';
import { RedisEventLog } from './redis-log.js';

export function openEventLog(store: Store, retention = DEFAULT_RETENTION): EventLog {
  if (store.redis) return new RedisEventLog(store.redis, retention);
  if (store.filePath) return new FileEventLog(join(dirname(store.filePath), 'events.jsonl'), retention);
  return new FileEventLog(null, retention);
}
