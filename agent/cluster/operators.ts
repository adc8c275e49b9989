import type { PeerCertificate } from 'node:tls';
import type { OperatorRecord } from '../../mesh/api/operators.js';
import { isValidName } from '../../mesh/api/stacks.js';
import { describeCertificate, normalizeSerial, ROLE_OPERATOR } from '../../mesh/pki/certificate.js';
import { generateKeyPair } from '../../mesh/pki/keys.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { OperatorContext, OperatorRow, Untrusted } from '../control/api.js';
import { InvalidError, NotFoundError } from '../errors.js';
import type { Authority } from '../identity/authority.js';
import type { StateAccess } from './state-access.js';

const DAY_MS = 86_400_000;
/** How long an operator's certificate lasts unless --expires says otherwise. */
const OPERATOR_VALID_MS = 90 * DAY_MS;

/**
 * `mesh operator add|ls|revoke`: the people who run the CLI from elsewhere. Each gets a key and a
 * certificate of the cluster CA in the operator role (never a node's), recorded by name and
 * serial; a node honours it while that record says so, revoked at once on every node.
 */
export class Operators {
  constructor(
    private readonly options: {
      nodeId: string;
      clusterId: string;
      state: ClusterState;
      access: StateAccess;
      authority: Authority;
    },
  ) {}

  async add(request: Untrusted<{ name: string; expiresMs?: number }>): Promise<OperatorContext> {
    const { access, authority, state, clusterId, nodeId } = this.options;
    access.requireManager();
    const name = request.name;
    if (!isValidName(name))
      throw new InvalidError('an operator name is lowercase letters, digits, - and _');
    const validMs = request.expiresMs === undefined ? OPERATOR_VALID_MS : Number(request.expiresMs);
    if (!Number.isFinite(validMs) || validMs < 1000)
      throw new InvalidError('--expires: at least 1s');
    const existing = state.get('operators', name)?.value;
    if (existing && !existing.revokedAt && existing.notAfter > Date.now())
      throw new InvalidError(
        `operator ${name} exists and is valid until ${new Date(existing.notAfter).toISOString()}: revoke it first to issue another`,
      );
    const keys = await generateKeyPair();
    const ca = await authority.ca();
    const issued = ca.issue({
      nodeId: name,
      publicKeyPem: keys.publicKeyPem,
      validDays: validMs / DAY_MS,
      operator: true,
    });
    const record: OperatorRecord = {
      name,
      serial: issued.serial,
      notAfter: describeCertificate(issued.certPem).notAfter.getTime(),
      addedAt: new Date().toISOString(),
      addedBy: nodeId,
    };
    await access.writeConditionally(() => [
      {
        op: 'put',
        kind: 'operators',
        id: name,
        value: record,
        ifVersion: state.get('operators', name)?.version ?? 0,
      },
    ]);
    const next = authority.setting()?.value.next;
    return {
      cluster: clusterId,
      operator: name,
      endpoints: this.managers(),
      // What a node's chain may lead to: the current CA, and the next while a rotation runs.
      ca: [ca.certPem, ...(next ? [next.certPem] : [])].join(''),
      cert: issued.certPem,
      key: keys.privateKeyPem,
    };
  }

  list(): OperatorRow[] {
    return this.options.state
      .list('operators')
      .map((o) => rowOf(o.value))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async revoke(request: Untrusted<{ name: string }>): Promise<OperatorRow> {
    const { access, state } = this.options;
    access.requireManager();
    const name = String(request.name ?? '');
    if (!state.get('operators', name))
      throw new NotFoundError(`no operator ${name}; see "mesh operator ls"`);
    await access.writeConditionally(() => {
      const stored = state.get('operators', name);
      if (!stored || stored.value.revokedAt) return [];
      const value = { ...stored.value, revokedAt: new Date().toISOString() };
      return [{ op: 'put', kind: 'operators', id: name, value, ifVersion: stored.version }];
    });
    return rowOf(state.get('operators', name)?.value as OperatorRecord);
  }

  /**
   * Why a client certificate (its chain already checked against the cluster CA) may not operate
   * the cluster, or undefined when it may: an operator's, of this cluster, the one recorded for
   * that name, neither revoked nor expired.
   */
  refusal(cert: PeerCertificate): string | undefined {
    const field = (value: string | string[] | undefined): string =>
      (Array.isArray(value) ? value[0] : value) ?? '';
    const role = field(cert.subject?.OU);
    const name = field(cert.subject?.CN);
    if (field(cert.subject?.O) !== this.options.clusterId)
      return 'a certificate of another cluster';
    if (role !== ROLE_OPERATOR)
      return `a ${role} certificate does not operate the cluster: an operator's does ("mesh operator add NAME" on a manager)`;
    const record = this.options.state.get('operators', name)?.value;
    if (!record || record.serial !== normalizeSerial(cert.serialNumber))
      return `operator ${name} has no such certificate (replaced, or never issued here)`;
    if (record.revokedAt) return `operator ${name} was revoked at ${record.revokedAt}`;
    if (record.notAfter <= Date.now()) return `the certificate of operator ${name} expired`;
    return undefined;
  }

  /** The managers' addresses: where an operator's commands may change desired state. */
  private managers(): string[] {
    const { access, state } = this.options;
    return access.voters
      .map((id) => state.get('nodes', id)?.value.address)
      .filter((address): address is string => Boolean(address));
  }
}

function rowOf(record: OperatorRecord): OperatorRow {
  const state = record.revokedAt ? 'revoked' : record.notAfter <= Date.now() ? 'expired' : 'valid';
  return {
    name: record.name,
    serial: record.serial,
    expires: new Date(record.notAfter).toISOString(),
    addedAt: record.addedAt,
    addedBy: record.addedBy,
    state,
  };
}
