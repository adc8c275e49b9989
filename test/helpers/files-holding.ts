import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Every file under a directory (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry);
    if ((await stat(path).catch(() => undefined))?.isFile()) files.push(path);
  }
  return files;
}

/** The files under a directory that hold this text: where a value that must stay sealed leaked. */
export async function filesHolding(dir: string, value: string): Promise<string[]> {
  const found: string[] = [];
  for (const path of await filesUnder(dir))
    if ((await readFile(path)).includes(value)) found.push(path);
  return found;
}
