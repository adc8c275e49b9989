/**
 * Raft scenarios read as message traces, from the files in testdata/ (etcd-raft's interaction
 * tests): each case is a command, `----`, and what must follow from it — every message sent, in
 * order (and whether a cut link dropped it), every entry a node applies, or the nodes' state.
 * After `tick NODE K` the same message repeated is written once, with how often (x20).
 * A failing case shows the whole trace it got beside the one written down.
 * MESH_REWRITE_TESTDATA=1 writes the traces got into the files (read the diff before keeping it).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { RaftError } from '../../../mesh/raft/raft.js';
import type { Entry, Message } from '../../../mesh/raft/types.js';
import { Cluster } from './harness.js';

const TESTDATA = fileURLToPath(new URL('../../../../test/mesh/raft/testdata/', import.meta.url));
const TRACES = readdirSync(TESTDATA).filter((f) => f.startsWith('trace-'));
const REWRITE = process.env.MESH_REWRITE_TESTDATA === '1';

interface Case {
  line: number;
  command: string;
  expected: string;
  /** Where the expected lines are in the file: [first, past the last). */
  lines: [number, number];
}

/** Cases are `command`, `----`, the lines expected, a blank line; `#` starts a comment. */
function parse(text: string): Case[] {
  const lines = text.split('\n');
  const cases: Case[] = [];
  for (let i = 0; i < lines.length; i++) {
    const command = lines[i]?.trim() ?? '';
    if (command === '' || command.startsWith('#')) continue;
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 2}: "----" expected after ${command}`);
    const expected: string[] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j] !== ''; j++) expected.push(lines[j] as string);
    cases.push({ line: i + 1, command, expected: expected.join('\n'), lines: [i + 2, j] });
    i = j;
  }
  return cases;
}

function describeEntry(e: Entry): string {
  const what = e.kind === 'command' ? JSON.stringify(e.data) : e.kind;
  return `${e.index}@${e.term} ${what}`;
}

/** One message, one line: who to whom, the type, the term, then what that type carries. */
function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'prevote':
    case 'vote':
      return `${head} log=${m.lastIndex}@${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'prevote-resp':
    case 'vote-resp':
      return `${head} ${m.reject ? 'rejected' : 'granted'}`;
    case 'append':
      return `${head} prev=${m.prevIndex}@${m.prevTerm} commit=${m.commit} [${m.entries.map(describeEntry).join(', ')}]`;
    case 'append-resp':
      return m.reject
        ? `${head} rejected index=${m.index} hint=${m.hintIndex}@${m.hintTerm}`
        : `${head} index=${m.index}`;
    case 'snapshot':
      return `${head} index=${m.snapshot.index}@${m.snapshot.term}`;
    case 'timeout-now':
      return head;
  }
}

/** Each distinct line once, in the order first seen, with how often it came when more than once. */
function counted(lines: string[]): string[] {
  const times = new Map<string, number>();
  for (const line of lines) times.set(line, (times.get(line) ?? 0) + 1);
  return [...times].map(([line, n]) => (n > 1 ? `${line} x${n}` : line));
}

class Interaction {
  private cluster = new Cluster([]);

  run(command: string): string {
    const [verb = '', ...args] = command.split(/\s+/);
    const sent = this.cluster.trace.length;
    const applied = new Map([...this.cluster.applied].map(([id, entries]) => [id, entries.length]));
    const said = this.act(verb, args);
    const lines = this.cluster.trace
      .slice(sent)
      .map(({ message, dropped }) => `${describeMessage(message)}${dropped ? ' (dropped)' : ''}`);
    const trace = verb === 'tick' ? counted(lines) : lines;
    const applies = [...this.cluster.applied].flatMap(([id, entries]) =>
      entries.slice(applied.get(id) ?? 0).map((e) => `${id} applies ${describeEntry(e)}`),
    );
    const out = [...said, ...trace, ...applies];
    return out.length > 0 ? out.join('\n') : 'ok';
  }

  private act(verb: string, args: string[]): string[] {
    const [id = ''] = args;
    switch (verb) {
      case 'voters':
        this.cluster = new Cluster(args);
        return [];
      case 'campaign':
        return this.campaign(id);
      case 'tick':
        for (let i = 0; i < Number(args[1] ?? 1); i++) this.cluster.node(id).tick();
        this.cluster.settle();
        return [];
      case 'heartbeat':
        this.cluster.heartbeat();
        return [];
      case 'propose':
        return this.attempt(() => this.cluster.node(id).propose(args.slice(1).join(' ')));
      case 'transfer':
        return this.attempt(() => this.cluster.node(id).transferLeadership(args[1] ?? ''));
      case 'isolate':
        this.cluster.isolate(id);
        return [];
      case 'heal':
        this.cluster.heal();
        return [];
      case 'status':
        return [...this.cluster.nodes].map(
          ([node, r]) =>
            `${node}: ${r.role} term=${r.term} vote=${r.vote ?? '-'} leader=${r.leader ?? '-'} commit=${r.log.committed} last=${r.log.lastIndex}`,
        );
      default:
        throw new Error(`unknown command "${verb}"`);
    }
  }

  /** Ticks the node until its election timeout makes it campaign, then lets messages settle. */
  private campaign(id: string): string[] {
    const raft = this.cluster.node(id);
    for (let ticks = 1; ticks <= 100; ticks++) {
      raft.tick();
      if (raft.role !== 'follower') {
        this.cluster.settle();
        return [];
      }
    }
    throw new Error(`${id} did not campaign within 100 ticks`);
  }

  /** Runs a call on a node, then settles; a refusal is part of the trace, by its code. */
  private attempt(call: () => unknown): string[] {
    try {
      call();
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
      return [`refused: ${error.code}${error.leader ? ` (leader ${error.leader})` : ''}`];
    }
    this.cluster.settle();
    return [];
  }
}

for (const file of TRACES) {
  test(`testdata/${file}: every trace as written`, (t) => {
    const text = readFileSync(`${TESTDATA}${file}`, 'utf8');
    const cases = parse(text);
    t.true(cases.length > 0);
    const interaction = new Interaction();
    const got = cases.map((c) => interaction.run(c.command));
    if (!REWRITE) {
      for (const [i, c] of cases.entries())
        t.is(got[i], c.expected, `${file}:${c.line}: ${c.command}`);
      return;
    }
    const lines = text.split('\n');
    for (const [i, c] of [...cases.entries()].reverse()) {
      lines.splice(c.lines[0], c.lines[1] - c.lines[0], ...(got[i] as string).split('\n'));
    }
    writeFileSync(`${TESTDATA}${file}`, lines.join('\n'));
  });
}
