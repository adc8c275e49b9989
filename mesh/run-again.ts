/**
 * A piece of work run one pass at a time: asked for while a pass runs, it runs once more after
 * that pass (however often it was asked), so that the last change is always seen. The loop of the
 * orchestrator's rounds and the data plane's passes.
 */
export class RunAgain {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (error: Error) => void,
  ) {}

  /** Runs a pass now, or once more after the one under way. */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    // Marked running before the pass begins: a pass that causes a request as it starts (a write
    // applied at once, whose watcher asks again) is then run once more, not entered twice.
    this.running = Promise.resolve()
      .then(() => this.pass())
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        if (!this.again) return;
        this.again = false;
        this.request();
      });
  }

  /** Resolves once no pass runs, nor is due. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
