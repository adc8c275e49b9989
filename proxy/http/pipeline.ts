/**
 * The requests of one client connection, served one at a time in the order they came: an HTTP/1.1
 * client may pipeline, and one connection must cost one request at a replica at most. What waits
 * is bounded: the connection is dropped past `limit` (a client pipelining that far is a flood).
 */
export class Pipeline {
  private busy = false;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  /**
   * Serves a request now or once those before it are over; `serve` calls back once its own is
   * over. False, and nothing queued, when `limit` already wait.
   */
  add(serve: (over: () => void) => void): boolean {
    if (this.waiting.length >= this.limit) return false;
    this.waiting.push(() => {
      let done = false;
      serve(() => {
        if (done) return;
        done = true;
        this.busy = false;
        this.next();
      });
    });
    this.next();
    return true;
  }

  /** The connection is gone: what waits is never served. */
  clear(): void {
    this.waiting.length = 0;
  }

  private next(): void {
    if (this.busy) return;
    const serve = this.waiting.shift();
    if (!serve) return;
    this.busy = true;
    serve();
  }
}
