/**
 * A bound on how long start-up waits for the file system or the network. A call that never completes (a hung
 * network mount, a FIFO nobody reads, Node's recursive mkdir spinning on a path under /proc) cannot be
 * cancelled: its thread stays busy, but the caller is answered and can refuse to start with a clear message.
 */

/** `p`, or a rejection with `onTimeout()` when `p` has not settled within `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
