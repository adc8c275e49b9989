import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets its old generation grow past what the last full GC left alive before it
 * collects again: V8 picks 1.1 to 4 times by itself. Under 1,000 connections an ingress worker
 * keeps about 21 MB alive and its heap pages swung between 57 and 113 MB from minute to minute
 * (bench:soak; in /proc/PID/smaps, V8's 256 KiB-aligned mappings; malloc's were about 10 MB and
 * flat): a node's least RSS a minute grew 93.5 MB in 6 minutes. A fixed 1.3 times holds the
 * heap near what is alive, for more frequent full GCs (mostly concurrent, off the main thread):
 * a 10-minute run then ended 8.9 MB below its second minute, and throughput did not move (wrk
 * -c1000 through the ingress, two runs each: 8.07k rps with it, 8.09k without). Only the ingress
 * workers set it: the agent's heap grew about 5 MB and flattened under the same load.
 */
const HEAP_GROWING_PERCENT = 30;

/** Sets this process's heap growing factor (read at each full GC, so it holds from the next). */
export function holdHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
