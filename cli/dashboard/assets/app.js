// The dashboard's page: Preact with htm, no bundler. Every view reads the control API through the
// dashboard server (/api/...), re-reads when the server-sent stream says the cluster moved, and
// shows the `mesh` command that gives the same.
import { html, render, useEffect, useState } from '/vendor/preact.js';

/** A refusal or failure of the API, with its HTTP status. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, body) {
  const response = await fetch(`/api/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new ApiError(response.status, answer.error);
  return answer;
}

const query = (params) =>
  new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined)).toString();

/** What the page knows of the cluster's moves: a counter the views re-read on, and the feed. */
const live = { version: 0, events: [], down: null, listeners: new Set() };
function tell() {
  for (const listener of live.listeners) listener();
}
function connect() {
  const stream = new EventSource('/api/stream');
  stream.addEventListener('change', () => {
    live.version++;
    live.down = null;
    tell();
  });
  stream.addEventListener('event', (message) => {
    live.events = [JSON.parse(message.data), ...live.events].slice(0, 200);
    tell();
  });
  stream.addEventListener('down', (message) => {
    live.down = JSON.parse(message.data).error;
    tell();
  });
}

function useLive() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    live.listeners.add(listener);
    return () => live.listeners.delete(listener);
  }, []);
  return live;
}

/** The API's answer at `path`, read again whenever the cluster moves; kept while a re-read fails. */
function useApi(path) {
  const { version } = useLive();
  const [state, setState] = useState({ data: undefined, error: undefined, at: undefined });
  const [retry, setRetry] = useState(0);
  useEffect(() => {
    let current = true;
    let timer;
    api(path).then(
      (data) => current && setState({ data, error: undefined, at: new Date() }),
      (error) => {
        if (!current) return;
        setState((s) => ({ ...s, error }));
        // No leader now, or a replica behind: worth asking again soon (never a 504's write).
        if (error.status === 503) timer = setTimeout(() => setRetry((n) => n + 1), 2000);
      },
    );
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [path, version, retry]);
  return state;
}

function useRoute() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const changed = () => setHash(location.hash || '#/');
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return hash.slice(1).split('/').filter(Boolean).map(decodeURIComponent);
}

const ago = (iso) => {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
};
const clock = (date) => date?.toTimeString().slice(0, 8);

/** A view's frame: its title, its `mesh` command, its data greyed with a banner when a re-read failed. */
function View({ title, command, state, children }) {
  const { error, at, data } = state;
  return html`<section class=${error && data ? 'stale' : ''}>
    <h1>${title}</h1>
    <div class="command">$ <code>${command}</code></div>
    ${error && html`<${Failure} error=${error} at=${data ? at : undefined} />`}
    ${data === undefined ? !error && html`<p>Loading…</p>` : children(data)}
  </section>`;
}

function Failure({ error, at }) {
  const since = at ? ` (showing what was true at ${clock(at)})` : '';
  if (error.status === 503)
    return html`<div class="banner">No leader or a replica behind: retrying${since}. ${error.message}</div>`;
  return html`<div class="banner error">${error.message}${since}</div>`;
}

/** An action's outcome, said where it was done: 504 is not retried, it may have been applied. */
function useAction() {
  const [said, setSaid] = useState(null);
  const run = async (what, call) => {
    setSaid({ busy: true, text: `${what}…` });
    try {
      await call();
      setSaid({ ok: true, text: `${what}: done` });
    } catch (error) {
      const text =
        error.status === 504
          ? `${what}: may or may not have been applied: look before trying again`
          : `${what}: ${error.message}`;
      setSaid({ ok: false, text });
    }
  };
  const note =
    said &&
    html`<span class=${said.ok ? 'ok' : said.busy ? '' : 'bad'} data-said>${said.text}</span>`;
  return [run, note];
}

/** The soonest a node's certificate expires, and a CA rotation under way: quorum's other clocks. */
function Clocks() {
  const nodes = useApi('nodes').data?.nodes ?? [];
  const ca = useApi('ca').data;
  const soonest = nodes
    .map((n) => n.certExpires)
    .filter(Boolean)
    .sort()[0];
  const days = soonest && Math.floor((Date.parse(soonest) - Date.now()) / 86_400_000);
  return html`<div class="cards">
    ${soonest && html`<div class="card"><div>Next certificate expiry</div><div class="value">${days} days</div><div>each renews itself at two thirds of its life</div></div>`}
    ${ca?.next && html`<div class="card" data-rotation><div>CA rotation</div><div class="value">${ca.nodes.length - ca.waitingFor.length}/${ca.nodes.length} nodes</div><div>waiting for ${ca.waitingFor.join(', ') || 'none'}</div></div>`}
  </div>`;
}

function Overview() {
  const state = useApi('status');
  return html`<${View} title="Overview" command="mesh status" state=${state}>
    ${(s) => html`<div class="cards">
      <div class="card"><div>Leader</div><div class="value" data-leader>${s.raft.leader ?? 'none'}</div></div>
      <div class="card"><div>Voters</div><div class="value">${s.raft.voters.length}</div>
        <div>tolerates ${s.raft.tolerates} failure${s.raft.tolerates === 1 ? '' : 's'}</div></div>
      <div class="card"><div>Members</div><div class="value" data-members>${s.members.alive} alive</div>
        <div>${s.members.suspect} suspect, ${s.members.dead} dead, ${s.members.left} left</div></div>
      <div class="card"><div>This node</div><div class="value">${s.nodeId}</div><div>${s.address}, mesh ${s.version}</div></div>
    </div>
    ${
      s.raft.voters.length < s.raft.targetVoters &&
      html`<p class="warn">${s.raft.voters.length} voters where the live nodes allow ${s.raft.targetVoters}: the cluster tolerates ${s.raft.tolerates} failures until the leader seats more.</p>`
    }
    ${s.lock === 'locked' && html`<p class="warn">This node is locked: run mesh unlock.</p>`}
    <${Clocks} />`}
  <//>`;
}

function Nodes() {
  const state = useApi('nodes');
  const [run, note] = useAction();
  const set = (node, availability) =>
    run(`${availability === 'drain' ? 'drain' : 'activate'} ${node}`, () =>
      api('node', { node, availability }),
    );
  return html`<${View} title="Nodes" command="mesh node ls" state=${state}>
    ${({ nodes }) => html`${note}<table>
      <tr><th>Node</th><th>Address</th><th>Status</th><th>Since</th><th>Role</th><th>Availability</th><th>Labels</th><th>Capacity</th><th>Certificate</th><th></th></tr>
      ${nodes.map(
        (n) => html`<tr data-node=${n.id}>
          <td>${n.id}${n.self ? ' (this node)' : ''}<br /><small>${n.hostname}</small></td>
          <td>${n.address}</td>
          <td class=${n.status === 'alive' ? 'ok' : n.status === 'suspect' ? 'warn' : 'bad'} data-status>${n.status}</td>
          <td>${ago(n.since)}</td>
          <td>${n.manager === 'leader' ? 'leader' : n.raft}</td>
          <td data-availability>${n.availability}</td>
          <td>${
            Object.entries(n.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ') || '-'
          }
            <${Label} node=${n.id} run=${run} /></td>
          <td>${n.capacity ? `${n.capacity.cpus} CPU, ${Math.round(n.capacity.memoryBytes / 2 ** 30)} GiB` : '-'}</td>
          <td>${n.certExpires ? `expires ${n.certExpires.slice(0, 10)}` : '-'}</td>
          <td>${
            n.availability === 'drain'
              ? html`<button onClick=${() => set(n.id, 'active')}>Activate</button>`
              : html`<button onClick=${() => set(n.id, 'drain')}>Drain</button>`
          }</td>
        </tr>`,
      )}
    </table>`}
  <//>`;
}

/** KEY=VALUE sets a label, KEY- takes it off, as `mesh node label` does. */
function Label({ node, run }) {
  const [text, setText] = useState('');
  const labels = text.split(/\s+/).filter(Boolean);
  return html`<div class="row">
    <input size="12" placeholder="key=value, key-" value=${text} onInput=${(e) => setText(e.target.value)} />
    <button disabled=${labels.length === 0} onClick=${() =>
      run(`label ${node} ${text}`, async () => {
        await api('node', { node, labels });
        setText('');
      })}>Label</button>
  </div>`;
}

const replicas = (s) => {
  const notes = [];
  if (s.rollout && s.rollout.state !== 'completed') notes.push(s.rollout.state);
  if (s.autoscale) notes.push(`auto ${s.autoscale.min}–${s.autoscale.max}`);
  return `${s.ready}/${s.desired}${notes.length ? ` (${notes.join('; ')})` : ''}`;
};

function Stacks() {
  const state = useApi('stacks');
  const [run, note] = useAction();
  const remove = (stack) => {
    const typed = prompt(`Remove stack ${stack} and all its containers? Type its name to confirm.`);
    if (typed === stack) run(`rm ${stack}`, () => api('stacks/rm', { stack }));
  };
  return html`<${View} title="Stacks" command="mesh ls" state=${state}>
    ${(stacks) =>
      stacks.length === 0
        ? html`<p>No stack yet: <a href="#/deploy">deploy one</a>.</p>`
        : html`${note}<table>
      <tr><th>Stack</th><th>Service</th><th>Replicas</th><th>Image</th><th>Ports</th><th>Name</th></tr>
      ${stacks.flatMap((stack) =>
        stack.services.map(
          (s, i) => html`<tr data-service=${s.id}>
            <td>${i === 0 && html`${stack.name} <button onClick=${() => remove(stack.name)}>Remove</button>`}</td>
            <td><a href=${`#/service/${encodeURIComponent(s.id)}`}>${s.id}</a></td>
            <td data-replicas>${'damaged' in s ? `damaged: ${s.damaged}` : replicas(s)}</td>
            <td>${s.image ?? '-'}</td>
            <td>${(s.ports ?? []).map((p) => `${p.published ?? '*'}->${p.target}/${p.protocol}`).join(', ') || '-'}</td>
            <td>${s.dnsName ?? '-'}</td>
          </tr>`,
        ),
      )}
    </table>`}
  <//>`;
}

function Logs({ service }) {
  const [lines, setLines] = useState([]);
  const [filter, setFilter] = useState('');
  useEffect(() => {
    let cursors = {};
    let stopped = false;
    let timer;
    const read = async () => {
      try {
        const page = await api(
          `logs?${query({ service, tail: '100', cursors: JSON.stringify(cursors) })}`,
        );
        cursors = page.cursors;
        if (page.lines.length > 0) setLines((old) => [...old, ...page.lines].slice(-1000));
      } catch {
        // The next read tries again: a node restarting is not worth a banner here.
      }
      if (!stopped) timer = setTimeout(read, 1500);
    };
    read();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [service]);
  const shown = lines.filter((l) => !filter || `${l.task} ${l.line}`.includes(filter));
  return html`<h2>Logs</h2>
    <div class="command">$ <code>mesh logs ${service} -f</code></div>
    <div class="row">Filter <input value=${filter} onInput=${(e) => setFilter(e.target.value)} /></div>
    <div class="logs" data-logs>${shown.map((l) => html`<div><span class="task">${l.task}</span> ${l.line}</div>`)}</div>`;
}

/**
 * The rollout of the current version, with health: the old version's tasks still ready, the new
 * one's starting, ready and failed, what it waits for, and why it paused or rolled back.
 */
function Rollout({ spec, tasks }) {
  const rollout = spec.rollout;
  if (!rollout || rollout.state === 'completed') return null;
  const current = tasks.filter((t) => t.desired === 'running' && t.serviceVersion === spec.version);
  // Start-first: a task of the old version runs on until its successor is ready.
  const old = tasks.filter((t) => t.desired === 'running' && t.serviceVersion !== spec.version);
  const failed = current.filter((t) => t.state === 'failed');
  const ready = current.filter((t) => t.ready);
  const starting = current.filter((t) => !t.ready && !failed.includes(t));
  const waiting = starting.find((t) => t.probe || t.reason);
  return html`<div class="card" data-rollout>
    <strong>${spec.rollingBack ? 'Rolling back' : 'Rollout'} to version ${spec.version}: ${rollout.state}</strong>
    <div>old ready ${old.filter((t) => t.ready).length} · new starting ${starting.length} · new ready ${ready.length}/${spec.replicas} · failed ${failed.length}</div>
    ${waiting && html`<div>waits for ${waiting.id}: ${waiting.probe ?? waiting.reason}</div>`}
    ${rollout.message && html`<div class="bad">${rollout.message}</div>`}
  </div>`;
}

/** How often the traffic view asks every node's ingress, and how many intervals it draws. */
const TRAFFIC_MS = 5000;
const TRAFFIC_POINTS = 30;

/** The counters of every node's ingress added up: requests, 5xx answers, latency bucket counts. */
function summed(answer) {
  const sum = {
    at: Date.parse(answer.at),
    requests: 0,
    errors: 0,
    buckets: answer.bucketsMs.map(() => 0),
    // Nodes that answered: one whose ingress saw nothing of the service answers with no counts.
    reached: answer.nodes.filter((n) => !n.unreachable).length,
  };
  sum.buckets.push(0);
  for (const { http } of answer.nodes) {
    if (!http) continue;
    sum.requests += http.requests;
    sum.errors += http.statuses['5xx'] ?? 0;
    http.latency.forEach((n, i) => {
      sum.buckets[i] += n;
    });
  }
  return sum;
}

/** Between two sums: requests a second, the 5xx share, and the bucket bound 95 % stayed under. */
function interval(before, after, bucketsMs) {
  const requests = after.requests - before.requests;
  if (requests < 0) return undefined; // a node's agent restarted: its counters began again
  const seconds = Math.max(0.001, (after.at - before.at) / 1000);
  let seen = 0;
  let p95 = null;
  for (let i = 0; i < after.buckets.length && requests > 0; i++) {
    seen += after.buckets[i] - before.buckets[i];
    if (seen >= requests * 0.95) {
      p95 = bucketsMs[i] ?? Number.POSITIVE_INFINITY;
      break;
    }
  }
  return {
    rps: requests / seconds,
    errorShare: requests > 0 ? (after.errors - before.errors) / requests : 0,
    p95,
  };
}

function Sparkline({ values }) {
  const max = Math.max(1e-9, ...values);
  const points = values
    .map((v, i) => `${(i / Math.max(1, TRAFFIC_POINTS - 1)) * 120},${24 - (v / max) * 22}`)
    .join(' ');
  return html`<svg width="120" height="24" class="spark"><polyline points=${points} fill="none" stroke="#2456d6" stroke-width="1.5" /></svg>`;
}

/** Request rate, 5xx share and p95 latency through the ingress of every node, as sparklines. */
function Traffic({ service }) {
  const [points, setPoints] = useState([]);
  const [reached, setReached] = useState(null);
  useEffect(() => {
    let before;
    let stopped = false;
    let timer;
    const read = async () => {
      try {
        const answer = await api(`traffic?${query({ service })}`);
        const now = summed(answer);
        setReached(`${now.reached} of ${answer.nodes.length} nodes`);
        const step = before && interval(before, now, answer.bucketsMs);
        if (step) setPoints((old) => [...old, step].slice(-TRAFFIC_POINTS));
        before = now;
      } catch {
        // The next read tries again.
      }
      if (!stopped) timer = setTimeout(read, TRAFFIC_MS);
    };
    read();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [service]);
  const last = points.at(-1);
  // The busiest interval of the window: a burst stays readable after it passed.
  const busiest = points.reduce((a, b) => (b.rps > a.rps ? b : a), last);
  return html`<h2>Traffic through the ingress</h2>
    <div class="row" data-traffic>
      ${
        last
          ? html`<span><${Sparkline} values=${points.map((p) => p.rps)} /> ${last.rps.toFixed(1)} req/s (peak ${busiest.rps.toFixed(1)})</span>
            <span><${Sparkline} values=${points.map((p) => p.errorShare)} /> ${(last.errorShare * 100).toFixed(1)}% 5xx</span>
            <span><${Sparkline} values=${points.map((p) => p.p95 ?? 0)} /> p95 ${busiest.p95 === null ? '-' : `≤ ${busiest.p95} ms`} at the peak</span>`
          : html`<span>measuring (every ${TRAFFIC_MS / 1000}s)…</span>`
      }
      <small>${reached ?? ''}</small>
    </div>`;
}

/** Per node, whether a task of the service fits there, or the first check it fails and the fix. */
function Placement({ service }) {
  const { data } = useApi(`placement?${query({ service })}`);
  if (!data) return null;
  return html`<h2>Where its tasks can go</h2>
    ${data.pending.length > 0 && html`<p class="warn" data-pending>${data.pending.length} waiting: ${data.pending[0].reason}</p>`}
    <table>
      <tr><th>Node</th><th>Fits</th><th>Fix</th></tr>
      ${data.nodes.map(
        (n) => html`<tr data-fit=${n.node}><td>${n.node} <small>${n.hostname}</small></td>
          <td class=${n.fits ? 'ok' : 'bad'}>${n.fits ? 'yes' : n.check}</td>
          <td>${n.fix ? html`<code>${n.fix}</code>` : ''}</td></tr>`,
      )}
    </table>`;
}

function Service({ id }) {
  const state = useApi(`tasks?${query({ service: id })}`);
  const service = useApi(`service?${query({ service: id })}`);
  const [count, setCount] = useState('');
  const [run, note] = useAction();
  const spec = service.data;
  return html`<${View} title=${id} command=${`mesh ps ${id}`} state=${state}>
    ${(tasks) => html`
      ${spec && html`<p>${spec.runtime === 'process' ? 'process' : spec.image}; version ${spec.version}; ${spec.mode === 'global' ? 'global' : `${spec.replicas} replicas`}${spec.autoscale ? `, autoscaled ${spec.autoscale.min}–${spec.autoscale.max}` : ''}${spec.rollout ? `; rollout ${spec.rollout.state}` : ''}</p>`}
      ${spec?.autoscaling && html`<p>Autoscaler: ${spec.autoscaling.reason}</p>`}
      ${spec && html`<${Rollout} spec=${spec} tasks=${tasks} />`}
      <div class="row">
        <input type="number" min="0" placeholder="replicas" value=${count} onInput=${(e) => setCount(e.target.value)} data-scale-input />
        <button disabled=${count === '' || Number(count) < 0} onClick=${() =>
          run(`scale ${id}=${count}`, () =>
            api('services/scale', { service: id, replicas: Number(count) }),
          )}>Scale</button>
        <button disabled=${!spec?.previous} onClick=${() => run(`rollback ${id}`, () => api('services/rollback', { service: id }))}>Rollback</button>
        ${note}
      </div>
      <table>
        <tr><th>Task</th><th>Node</th><th>State</th><th>Ready</th><th>Since</th><th>Reason</th><th>Restarts</th><th>Probe</th></tr>
        ${tasks
          .filter((t) => t.desired === 'running')
          .map(
            (t) => html`<tr data-task=${t.id}>
              <td>${t.id}</td><td data-task-node>${t.node ?? '-'}</td><td data-state>${t.state}</td>
              <td>${t.ready === null ? '-' : t.ready ? 'yes' : 'no'}</td><td>${ago(t.since)}</td>
              <td>${t.reason ?? ''}</td><td>${t.restarts}</td><td>${t.probe ?? ''}</td>
            </tr>`,
          )}
      </table>
      <${Traffic} service=${id} />
      <${Placement} service=${id} />
      <${Logs} service=${id} />`}
  <//>`;
}

/** Text as base64, as the control API takes a value's data. */
const base64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/** A secret's or config's names, versions and users; a new value can be written, never read back. */
function ValueKind({ kind, noun }) {
  const state = useApi(`values?kind=${kind}`);
  const [name, setName] = useState('');
  const [data, setData] = useState('');
  const [run, note] = useAction();
  const write = (route, what) =>
    run(`${what} ${noun} ${name}`, async () => {
      await api(route, { kind, name, data: base64(data) });
      setData('');
    });
  const remove = (value) => {
    const typed = prompt(`Remove ${noun} ${value}? Type its name to confirm.`);
    if (typed === value) run(`rm ${noun} ${value}`, () => api('values/rm', { kind, name: value }));
  };
  return html`<${View} title=${`${noun[0].toUpperCase()}${noun.slice(1)}s`} command=${`mesh ${noun} ls`} state=${state}>
    ${(rows) => html`<table>
        <tr><th>Name</th><th>Versions</th><th>Used by</th><th></th></tr>
        ${rows.map(
          (
            v,
          ) => html`<tr data-value=${v.name}><td>${v.name}</td><td>${v.versions.map((x) => x.version).join(', ')}</td>
            <td>${v.services.map((s) => `${s.service} (v${s.version})`).join(', ') || '-'}</td>
            <td><button onClick=${() => remove(v.name)}>Remove</button></td></tr>`,
        )}
      </table>
      <div class="row">
        <input placeholder="name" value=${name} onInput=${(e) => setName(e.target.value)} data-value-name=${kind} />
        <input type="password" placeholder="value (write-only)" value=${data} onInput=${(e) => setData(e.target.value)} data-value-data=${kind} />
        <button disabled=${!name || !data} onClick=${() => write('values', 'create')}>Create</button>
        <button disabled=${!name || !data} onClick=${() => write('values/update', 'update')}>Update</button>
        ${note}
      </div>`}
  <//>`;
}

function Values() {
  return html`<${ValueKind} kind="secrets" noun="secret" /><${ValueKind} kind="configs" noun="config" />`;
}

function Volumes() {
  const state = useApi('volumes');
  return html`<${View} title="Volumes" command="mesh volume ls" state=${state}>
    ${(rows) => html`<table>
      <tr><th>Volume</th><th>Node</th><th>Node status</th><th>Services</th><th>Pinned</th></tr>
      ${rows.map((v) => html`<tr><td>${v.name}</td><td>${v.node}</td><td>${v.nodeStatus}</td><td>${v.services.join(', ')}</td><td>${ago(v.pinnedAt)}</td></tr>`)}
    </table>`}
  <//>`;
}

/** Paste a compose file, see its problems (by line) or what would change, then deploy it. */
function Deploy() {
  const [stack, setStack] = useState('');
  const [text, setText] = useState('');
  const [checked, setChecked] = useState(null);
  const [run, note] = useAction();
  const ask = (dryRun) => api('deploy', { stack, text, dryRun });
  const check = () =>
    run('check', async () => {
      const answer = await ask(true);
      setChecked({ text, stack, answer });
      const n = answer.problems?.length ?? 0;
      if (n > 0) throw new Error(`the file is refused (${n} problem${n === 1 ? '' : 's'})`);
    });
  const deploy = () =>
    run(`deploy ${stack}`, async () => {
      setChecked({ text, stack, answer: await ask(false), deployed: true });
    });
  const answer = checked?.answer;
  const clean = answer && !answer.problems && checked.text === text && checked.stack === stack;
  return html`<section>
    <h1>Deploy</h1>
    <div class="command">$ <code>mesh deploy -c compose.yml ${stack || 'STACK'}</code></div>
    <div class="row">Stack <input value=${stack} onInput=${(e) => setStack(e.target.value)} data-stack /></div>
    <textarea value=${text} onInput=${(e) => setText(e.target.value)} data-compose spellcheck="false"></textarea>
    <div class="row">
      <button onClick=${check} disabled=${!text}>Check</button>
      <button class="primary" onClick=${deploy} disabled=${!clean || checked.deployed} data-deploy>Deploy</button>
      ${note}
    </div>
    ${answer?.problems && checked.text === text && html`<${Marked} text=${text} problems=${answer.problems} />`}
    ${
      answer?.problems &&
      html`<ul class="problems bad" data-problems>${answer.problems.map(
        (p) => html`<li>line ${p.line}, column ${p.column}: ${p.path}: ${p.message}</li>`,
      )}</ul>`
    }
    ${
      answer?.services &&
      html`<ul class="diff" data-diff>${answer.services.map(
        (s) =>
          html`<li>${checked.deployed ? '' : 'would be '}${s.change}: ${s.id}${s.version ? ` (version ${s.version})` : ''}</li>`,
      )}
    ${answer.unplaceable.map((u) => html`<li class="warn">${u.reason}</li>`)}
    ${answer.ignored.map((i) => html`<li>ignored (line ${i.line}): ${i.path}: ${i.reason}</li>`)}</ul>`
    }
  </section>`;
}

/** The file's lines, numbered, the refused ones marked with what is wrong there. */
function Marked({ text, problems }) {
  const at = new Map(problems.map((p) => [p.line, p.message]));
  return html`<pre class="marked" data-marked>${text
    .split('\n')
    .map(
      (line, i) =>
        html`<div class=${at.has(i + 1) ? 'refused' : ''} title=${at.get(i + 1) ?? ''}><span class="n">${i + 1}</span>${line}</div>`,
    )}</pre>`;
}

function Feed() {
  const { events } = useLive();
  return html`<section class="feed"><h2>Since you opened this page</h2>
    ${events.length === 0 ? html`<p>Nothing yet.</p>` : ''}
    <ul data-feed>${events.map(
      (e) =>
        html`<li>${e.time.slice(11, 19)} ${e.type} ${e.action} ${e.subject}${e.reason ? `: ${e.reason}` : ''}</li>`,
    )}</ul></section>`;
}

const VIEWS = [
  ['', 'Overview'],
  ['nodes', 'Nodes'],
  ['stacks', 'Stacks'],
  ['values', 'Secrets & configs'],
  ['volumes', 'Volumes'],
  ['deploy', 'Deploy'],
];

function App() {
  const [first, second] = useRoute();
  const { down } = useLive();
  const view =
    first === 'nodes'
      ? html`<${Nodes} />`
      : first === 'stacks'
        ? html`<${Stacks} />`
        : first === 'service'
          ? html`<${Service} id=${second} />`
          : first === 'values'
            ? html`<${Values} />`
            : first === 'volumes'
              ? html`<${Volumes} />`
              : first === 'deploy'
                ? html`<${Deploy} />`
                : html`<${Overview} />`;
  return html`<header>
      <strong>mesh</strong>
      ${VIEWS.map(([path, name]) => html`<a href=${`#/${path}`} class=${(first ?? '') === path ? 'here' : ''}>${name}</a>`)}
    </header>
    ${down && html`<div class="banner error" data-down>The agent does not answer: ${down}. Retrying.</div>`}
    <main>${view}<${Feed} /></main>`;
}

connect();
render(html`<${App} />`, document.getElementById('app'));
