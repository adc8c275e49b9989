import { readFileSync } from 'node:fs';
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type YAMLError,
} from 'yaml';
import { UserError } from '../../mesh/user-error.js';
import { mergeCompose } from './merge.js';

export type KeyPath = Array<string | number>;

/** One thing wrong in a stack file, located. */
export interface Problem {
  file: string;
  line: number;
  column: number;
  path: KeyPath;
  message: string;
}

export class StackFileError extends UserError {
  override name = 'StackFileError';

  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

/** A problem found while reading one value, and the key path it is at. */
export class Located extends Error {
  constructor(
    readonly path: KeyPath,
    message: string,
  ) {
    super(message);
  }
}

export function formatPath(path: KeyPath): string {
  return path.map(String).join('.') || '(top level)';
}

/** `file:line:column: key.path: what`; a problem with the file as a whole (line 0) names it alone. */
export function formatProblem(p: Problem): string {
  if (p.line === 0) return `${p.file}: ${p.message}`;
  return `${p.file}:${p.line}:${p.column}: ${formatPath(p.path)}: ${p.message}`;
}

const indentOf = (line: string) => line.length - line.trimStart().length;

/**
 * A YAML parser's complaint in the words of someone fixing a compose file: what is wrong with the
 * line it names, and what the lines around it do.
 */
function yamlTrouble(error: YAMLError, lines: string[], line: number): string {
  const text = lines[line - 1] ?? '';
  const first = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? '';
  if (error.code === 'TAB_AS_INDENT')
    return 'a tab indents this line: YAML indents with spaces only';
  if (error.code === 'DUPLICATE_KEY')
    return `${text.trim().split(':')[0]} is given twice in the same mapping: keep one`;
  if (error.code === 'BAD_INDENT' && /same column/.test(first)) {
    // The nearest line above with content: the key this one should line up with, or its parent.
    const above = lines
      .slice(0, line - 1)
      .map((l, i) => ({ text: l, number: i + 1 }))
      .filter((l) => l.text.trim() !== '' && !l.text.trim().startsWith('#'))
      .at(-1);
    const sibling = above && indentOf(above.text);
    return `${text.trim()} is indented ${indentOf(text)} spaces, but the key above it (line ${above?.number}) is indented ${sibling}: keys of one mapping line up (YAML nests by indentation)`;
  }
  return `invalid YAML: ${first}`;
}

/** Why a file could not be read, in plain words. */
function unreadable(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return 'no such file';
  if (error.code === 'EACCES') return 'not allowed to read it (permission denied)';
  if (error.code === 'EISDIR') return 'a directory, not a compose file';
  return error.message;
}

/** A parsed YAML file that can say where any key path is. */
export class Source implements StackSource {
  private constructor(
    readonly file: string,
    readonly data: unknown,
    private readonly document: ReturnType<typeof parseDocument>,
    private readonly lines: LineCounter,
  ) {}

  static read(file: string): Source {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new StackFileError([
        { file, line: 0, column: 0, path: [], message: unreadable(error as NodeJS.ErrnoException) },
      ]);
    }
    return Source.parse(file, text);
  }

  static parse(file: string, text: string): Source {
    const lines = new LineCounter();
    // merge: YAML 1.1's `<<: *defaults`, which Compose resolves and stack files use everywhere.
    const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
    if (document.errors.length > 0) {
      const textLines = text.split('\n');
      throw new StackFileError(
        document.errors.map((e) => {
          const { line, col } = lines.linePos(e.pos[0]);
          return { file, line, column: col, path: [], message: yamlTrouble(e, textLines, line) };
        }),
      );
    }
    return new Source(file, document.toJS({ maxAliasCount: 100 }), document, lines);
  }

  /** Where the value at `path` starts, or for a missing key the nearest enclosing node. */
  locate(path: KeyPath, atKey = false): { file: string; line: number; column: number } {
    let node: Node | null | undefined = this.document.contents as Node | null;
    let keyNode: Node | undefined;
    for (const step of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isScalar(p.key) && String(p.key.value) === String(step),
        );
        if (!pair) break;
        keyNode = pair.key as Node;
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof step === 'number' && node.items[step]) {
        keyNode = undefined;
        node = node.items[step] as Node;
      } else break;
    }
    const at = (atKey ? keyNode : undefined) ?? node ?? keyNode;
    const offset = at?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  problem(path: KeyPath, message: string, atKey = false): Problem {
    return { ...this.locate(path, atKey), path, message };
  }

  /** Whether the file sets the key path itself (not only an enclosing key). */
  has(path: KeyPath): boolean {
    let node: unknown = this.document.contents;
    for (const step of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isScalar(p.key) && String(p.key.value) === String(step),
        );
        if (!pair) return false;
        node = pair.value;
      } else if (isSeq(node) && typeof step === 'number' && node.items[step]) {
        node = node.items[step];
      } else return false;
    }
    return true;
  }
}

/** Where a stack's data came from: one file, or several merged as Compose merges them. */
export interface StackSource {
  /** The first file: relative paths are relative to its directory, as Compose has it. */
  readonly file: string;
  readonly data: unknown;
  locate(path: KeyPath, atKey?: boolean): { file: string; line: number; column: number };
  problem(path: KeyPath, message: string, atKey?: boolean): Problem;
}

/**
 * Several files read as one (`-c base.yml -c override.yml`): the data merged in order, and a key
 * located in the last file that sets it (else the first), so that a problem names that file.
 */
export class MergedSource implements StackSource {
  readonly data: unknown;

  constructor(private readonly sources: Source[]) {
    this.data = mergeCompose(sources.map((s) => s.data));
  }

  get file(): string {
    return (this.sources[0] as Source).file;
  }

  locate(path: KeyPath, atKey = false): { file: string; line: number; column: number } {
    return this.holderOf(path).locate(path, atKey);
  }

  problem(path: KeyPath, message: string, atKey = false): Problem {
    return this.holderOf(path).problem(path, message, atKey);
  }

  private holderOf(path: KeyPath): Source {
    for (let k = path.length; k >= 0; k--) {
      const holder = [...this.sources].reverse().find((s) => s.has(path.slice(0, k)));
      if (holder && k > 0) return holder;
    }
    return this.sources[0] as Source;
  }
}
