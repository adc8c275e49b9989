import type Docker from 'dockerode';

/** Removes every container carrying the label, whatever state it is in. (No ava here: benchmarks use it too.) */
export async function removeLabelled(docker: Docker, label: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}
