import type Docker from 'dockerode';

/**
 * Removes every container carrying the label, whatever state it is in, then the networks and
 * volumes carrying it. (No ava here: benchmarks use it too.)
 */
export async function removeLabelled(docker: Docker, label: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  const networks = await docker.listNetworks({ filters: { label: [label] } });
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove()));
  const { Volumes } = await docker.listVolumes({ filters: { label: [label] } });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove()));
}
