import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { onInterrupt } from './interrupt.js';

const run = promisify(execFile);

function iptables(...args: string[]): Promise<unknown> {
  return run('iptables', ['-w', ...args]);
}

/**
 * Partitions between a test's own loopback addresses, with iptables: every rule lives in a chain
 * of the test's own, jumped to from INPUT, and close() removes the jump, the rules and the chain.
 * Nothing else on the machine is touched.
 */
export class Firewall {
  /** Takes back the cleanup an interrupt would run: close runs it itself. */
  private readonly forget: () => void;
  /**
   * Changes one after the other: an interrupt's close() waits for a split still adding rules
   * (else a rule added after its flush keeps the chain from being deleted), and nothing is added
   * after it.
   */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly chain: string) {
    // Ctrl-C in the middle of a partition leaves no rule behind.
    this.forget = onInterrupt(() => this.close());
  }

  static async open(label: string): Promise<Firewall> {
    const chain = `mesh-${label}`.slice(0, 28);
    // Left by a run that was killed: start from an empty chain all the same.
    await iptables('-N', chain).catch(() => iptables('-F', chain));
    await iptables('-C', 'INPUT', '-j', chain).catch(() => iptables('-I', 'INPUT', '-j', chain));
    return new Firewall(chain);
  }

  /** Runs a change after those before it; a closed firewall changes nothing more. */
  private serial(change: () => Promise<unknown>): Promise<void> {
    const next = this.queue.then(() => (this.closed ? undefined : change()));
    this.queue = next.catch(() => undefined); // the caller hears of a failure; the queue goes on
    return next.then(() => undefined);
  }

  /** Drops every packet from a to b, and from b to a unless one way only. */
  cut(a: string, b: string, oneWay = false): Promise<void> {
    return this.serial(async () => {
      await iptables('-A', this.chain, '-s', a, '-d', b, '-j', 'DROP');
      if (!oneWay) await iptables('-A', this.chain, '-s', b, '-d', a, '-j', 'DROP');
    });
  }

  /** Cuts every link between the two sides. */
  async split(side: string[], other: string[]): Promise<void> {
    for (const a of side) for (const b of other) await this.cut(a, b);
  }

  heal(): Promise<void> {
    return this.serial(() => iptables('-F', this.chain));
  }

  async close(): Promise<void> {
    this.forget();
    await this.serial(async () => {
      this.closed = true;
      await iptables('-F', this.chain);
      await iptables('-D', 'INPUT', '-j', this.chain);
      await iptables('-X', this.chain);
    });
  }
}
