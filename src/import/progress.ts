/**
 * Where an import reports its progress while a client waits: MCP progress notifications, when the request
 * carried a progressToken. server.ts runs each call inside the request's sink (AsyncLocalStorage, so nothing
 * between the transport and the tool has to carry it); import_leads reads it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type ProgressSink = (done: number, total: number) => void;

const current = new AsyncLocalStorage<ProgressSink>();

export function withProgressSink<T>(sink: ProgressSink | undefined, fn: () => T): T {
  return sink ? current.run(sink, fn) : fn();
}

/** The progress sink of the request being handled, if its client asked for progress. */
export function progressSink(): ProgressSink | undefined {
  return current.getStore();
}
