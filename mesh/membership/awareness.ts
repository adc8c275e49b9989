/**
 * Lifeguard's local health: a node that keeps missing acks (and the nacks that would prove the
 * network, not itself, is at fault) is probably the slow one, so it stretches its own timeouts
 * instead of accusing others.
 */
export class Awareness {
  private score = 0;

  constructor(private readonly max: number) {}

  get health(): number {
    return this.score;
  }

  apply(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  scale(ms: number): number {
    return ms * (this.score + 1);
  }
}
