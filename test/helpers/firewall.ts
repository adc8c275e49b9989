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

  /** Drops every packet from a to b, and from b to a unless one way only. */
  async cut(a: string, b: string, oneWay = false): Promise<void> {
    await iptables('-A', this.chain, '-s', a, '-d', b, '-j', 'DROP');
    if (!oneWay) await iptables('-A', this.chain, '-s', b, '-d', a, '-j', 'DROP');
  }

  /** Cuts every link between the two sides. */
  async split(side: string[], other: string[]): Promise<void> {
    for (const a of side) for (const b of other) await this.cut(a, b);
  }

  async heal(): Promise<void> {
    await iptables('-F', this.chain);
  }

  async close(): Promise<void> {
    this.forget();
    await this.heal();
    await iptables('-D', 'INPUT', '-j', this.chain);
    await iptables('-X', this.chain);
  }
}
