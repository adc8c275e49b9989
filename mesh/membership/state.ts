import { type Random, sample } from '../random.js';
import type { Awareness } from './awareness.js';
import { BroadcastQueue } from './broadcast.js';
import { type SwimConfig, suspicionMinMs } from './config.js';
import type { MemberStatus, NodeMeta, Update } from './messages.js';
import { Suspicion } from './suspicion.js';

function isLive(status: MemberStatus): boolean {
  return status === 'alive' || status === 'suspect';
}

export interface Member {
  id: string;
  address: string;
  meta: NodeMeta;
  incarnation: number;
  status: MemberStatus;
  /** When the status last changed, in the caller's clock. */
  since: number;
  /** When a message of its own last arrived here, in the caller's clock (never gossiped). */
  heardAt?: number;
}

/** A change the caller may act on: a member appeared, changed status, or changed its meta. */
export interface MemberEvent {
  member: Member;
  previous: MemberStatus | undefined;
}

/**
 * The member table and SWIM's rules for what news to believe: a higher incarnation wins; at equal
 * incarnation suspect beats alive and dead/left beat both. Whatever is believed is passed on.
 */
export class MemberState {
  readonly members = new Map<string, Member>();
  // The same members in an array, for O(1) random picks; members are never removed.
  private readonly list: Member[] = [];
  private live = 0;
  readonly broadcasts = new BroadcastQueue();
  private readonly suspicions = new Map<string, Suspicion>();
  private events: MemberEvent[] = [];
  leaving = false;

  constructor(
    private readonly config: SwimConfig,
    readonly self: Member,
    private readonly awareness: Awareness,
  ) {
    this.members.set(self.id, self);
    this.list.push(self);
    this.live = 1;
  }

  /** Members believed to be running (alive or suspect), ourselves included. */
  get liveCount(): number {
    return this.live;
  }

  /** Up to k distinct other members passing the filter, chosen uniformly. */
  randomOthers(k: number, filter: (m: Member) => boolean, random: Random): Member[] {
    const accept = (m: Member) => m !== this.self && filter(m);
    const picked = new Set<Member>();
    // Rejection sampling is O(k) while most members qualify, as they do in a healthy cluster.
    for (let tries = 0; picked.size < k && tries < k * 8; tries++) {
      const m = this.list[random.int(this.list.length)];
      if (m && accept(m)) picked.add(m);
    }
    if (picked.size < k) return sample(this.list.filter(accept), k, random);
    return [...picked];
  }

  takeEvents(): MemberEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  aliveUpdate(member: Member): Update {
    return {
      status: 'alive',
      id: member.id,
      inc: member.incarnation,
      addr: member.address,
      meta: member.meta,
    };
  }

  /** Full state for push-pull. */
  snapshot(): Update[] {
    return [...this.members.values()].map((m) =>
      m.status === 'alive'
        ? this.aliveUpdate(m)
        : { status: m.status, id: m.id, inc: m.incarnation, from: this.self.id },
    );
  }

  /** A message came from the member itself: it was alive then. */
  heard(id: string, now: number): void {
    const member = this.members.get(id);
    if (member) member.heardAt = now;
  }

  /** Push-pull merge: a remote "dead" only makes us suspect, so a live member gets to refute. */
  merge(state: Update[], now: number): void {
    for (const update of state) {
      if (update.status === 'dead' && update.id !== this.self.id)
        this.apply({ ...update, status: 'suspect' }, now);
      else this.apply(update, now);
    }
  }

  apply(update: Update, now: number): void {
    if (update.id === this.self.id) {
      this.aboutSelf(update);
      return;
    }
    const current = this.members.get(update.id);
    switch (update.status) {
      case 'alive':
        if (current && update.inc <= current.incarnation) return;
        this.suspicions.delete(update.id);
        this.set(update.id, now, {
          address: update.addr,
          meta: update.meta,
          incarnation: update.inc,
          status: 'alive',
        });
        break;
      case 'suspect':
        this.suspect(update, current, now);
        return;
      case 'dead':
      case 'left':
        if (!current || update.inc < current.incarnation) return;
        if (current.status === 'left' || (current.status === 'dead' && update.status === 'dead'))
          return;
        this.suspicions.delete(update.id);
        this.set(update.id, now, { incarnation: update.inc, status: update.status });
        break;
    }
    this.broadcasts.enqueue(update);
  }

  /** Our own probe failed: suspect the target at the incarnation we know. */
  suspectMember(id: string, now: number): void {
    const member = this.members.get(id);
    // Already suspect: our failed probe is an independent confirmation.
    if (member?.status !== 'alive' && member?.status !== 'suspect') return;
    this.apply({ status: 'suspect', id, inc: member.incarnation, from: this.self.id }, now);
  }

  /** Suspicions whose time is up become deaths, announced like any other news. */
  expireSuspicions(now: number): void {
    for (const [id, suspicion] of this.suspicions) {
      if (suspicion.deadline > now) continue;
      this.suspicions.delete(id);
      this.apply({ status: 'dead', id, inc: suspicion.incarnation, from: this.self.id }, now);
    }
  }

  nextSuspicionDeadline(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const suspicion of this.suspicions.values()) next = Math.min(next, suspicion.deadline);
    return next;
  }

  setMeta(meta: NodeMeta): void {
    this.self.meta = meta;
    // Once left, news of us at a new incarnation would read as alive again and undo the leave
    // (parts still running while the node leaves may change what it gossips): the change stays
    // ours.
    if (this.leaving) return;
    this.self.incarnation += 1;
    this.events.push({ member: { ...this.self }, previous: this.self.status });
    this.broadcasts.enqueue(this.aliveUpdate(this.self));
  }

  leave(now: number): void {
    this.leaving = true;
    const previous = this.self.status;
    this.self.status = 'left';
    this.live -= 1;
    this.self.since = now;
    this.events.push({ member: { ...this.self }, previous });
    this.broadcasts.enqueue({
      status: 'left',
      id: this.self.id,
      inc: this.self.incarnation,
      from: this.self.id,
    });
  }

  private suspect(
    update: Extract<Update, { from: string }>,
    current: Member | undefined,
    now: number,
  ): void {
    if (!current || update.inc < current.incarnation) return;
    if (current.status === 'dead' || current.status === 'left') return;
    const existing = this.suspicions.get(update.id);
    if (current.status === 'suspect' && existing && update.inc === existing.incarnation) {
      // Another member agrees: the timer shortens, and the news is worth passing on.
      if (existing.confirm(update.from)) this.broadcasts.enqueue(update);
      return;
    }
    const n = this.liveCount;
    // Lifeguard: expect suspicionMult - 2 independent confirmations, none in tiny clusters.
    const k = n - 2 < this.config.suspicionMult - 2 ? 0 : this.config.suspicionMult - 2;
    const minMs = suspicionMinMs(this.config, n);
    const maxMs = this.config.suspicionMaxTimeoutMult * minMs;
    this.suspicions.set(update.id, new Suspicion(update.inc, now, update.from, k, minMs, maxMs));
    this.set(update.id, now, { incarnation: update.inc, status: 'suspect' });
    this.broadcasts.enqueue(update);
  }

  /** News about ourselves: anything but "alive" at our incarnation is refuted. */
  private aboutSelf(update: Update): void {
    if (this.leaving) return;
    const stale = update.inc < this.self.incarnation;
    if (stale || (update.status === 'alive' && update.inc === this.self.incarnation)) return;
    // Someone believes we are suspect, dead or gone (or remembers a previous life of ours with a
    // higher incarnation): outbid it.
    this.self.incarnation = update.inc + 1;
    if (update.status !== 'alive') this.awareness.apply(1);
    this.broadcasts.enqueue(this.aliveUpdate(this.self));
  }

  private set(id: string, now: number, change: Partial<Member>): void {
    let member = this.members.get(id);
    const previous = member?.status;
    const metaChanged = change.meta !== undefined && change.meta !== member?.meta;
    if (member) {
      Object.assign(member, change);
    } else {
      member = { id, since: now, ...change } as Member;
      this.members.set(id, member);
      this.list.push(member);
    }
    if (member.status === previous && !metaChanged) return;
    if (member.status !== previous) {
      member.since = now;
      this.live += (isLive(member.status) ? 1 : 0) - (previous && isLive(previous) ? 1 : 0);
    }
    this.events.push({ member: { ...member }, previous });
  }
}
