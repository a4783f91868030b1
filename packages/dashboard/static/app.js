// The Flotilla dashboard: one ES module, no framework. It signs in with a bearer token (kept
// for the browser tab in sessionStorage), follows the cluster through the Kubernetes API's own
// list + watch (the page updates as objects change, with no reload), polls the masters' Raft
// status twice a second, and offers a few actions: scale a Deployment, delete a pod, follow a
// pod's log, apply YAML, hand Raft leadership to another master.
import { parseAllDocuments } from '/ui/vendor/yaml/index.js';

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
let token = sessionStorage.getItem('flotilla-token') ?? '';

async function api(method, path, body, contentType = 'application/json') {
  const res = await fetch(path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': contentType }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (!res.ok) throw Object.assign(new Error(json?.message ?? `HTTP ${res.status}`), { status: res.status });
  return json;
}

// ---- live collections: list, then watch from the list's resourceVersion; list again on 410.
// A browser keeps at most 6 connections to one server over HTTP/1.1 and every watch holds
// one, so only the collections the current page shows are followed (at most 3).
const PATHS = { nodes: '/api/v1/nodes', pods: '/api/v1/pods', deployments: '/apis/apps/v1/deployments', services: '/api/v1/services', endpoints: '/api/v1/endpoints', events: '/api/v1/events' };
const NEEDS = { cluster: [], nodes: ['nodes', 'pods'], workloads: ['deployments', 'pods'], services: ['services', 'endpoints', 'nodes'], events: ['events'], apply: [] };
const stores = {};
function follow(name) {
  if (stores[name] !== undefined) return stores[name];
  const path = PATHS[name];
  const abort = new AbortController();
  const store = (stores[name] = { items: new Map(), ready: false, stop: () => abort.abort() });
  const key = (o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const list = await api('GET', path);
        store.items = new Map(list.items.map((o) => [key(o), o]));
        store.ready = true;
        render();
        let rv = list.metadata.resourceVersion;
        for (;;) {
          const res = await fetch(`${path}?watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
          if (!res.ok) throw new Error(`watch ${res.status}`);
          const reader = res.body.getReader();
          const decoder = new TextDecoder();
          let buffer = '';
          let expired = false;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let nl;
            while ((nl = buffer.indexOf('\n')) >= 0) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              if (line === '') continue;
              const e = JSON.parse(line);
              if (e.type === 'ERROR') {
                expired = true;
                continue;
              }
              rv = e.object.metadata.resourceVersion ?? rv;
              if (e.type === 'ADDED' || e.type === 'MODIFIED') store.items.set(key(e.object), e.object);
              else if (e.type === 'DELETED') store.items.delete(key(e.object));
              if (e.type !== 'BOOKMARK') render();
            }
          }
          if (expired) break; // list again
        }
      } catch {
        if (abort.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 1000)); // the master went away: try again (any master serves)
      }
    }
  };
  void run();
  return store;
}

/** Follows what `page` shows, and stops following the rest. */
function followFor(page) {
  const needed = NEEDS[page] ?? [];
  for (const name of Object.keys(stores)) {
    if (!needed.includes(name)) {
      stores[name].stop();
      delete stores[name];
    }
  }
  for (const name of needed) follow(name);
}
const all = (name) => [...(stores[name]?.items.values() ?? [])];

// ---- the masters' Raft status, and what changed in it while this page was open
const cluster = { masters: [], timeline: [], error: '' };
let lastLeader;
let polling = false;
async function pollCluster() {
  try {
    cluster.masters = (await api('GET', '/flotilla/v1/cluster')).masters;
    cluster.error = '';
    const leader = cluster.masters.find((m) => m.role === 'leader');
    const now = leader === undefined ? 'none' : `${leader.name}@${leader.term}`;
    if (now !== lastLeader) {
      cluster.timeline.unshift({ at: new Date(), text: leader === undefined ? 'no leader (an election is under way)' : `${leader.name} leads (term ${leader.term})` });
      cluster.timeline.length = Math.min(cluster.timeline.length, 50);
      lastLeader = now;
    }
  } catch (err) {
    // This page's master does not answer (it may be the one that was killed): what it said
    // last is no longer true.
    cluster.error = `${location.host} does not answer (${err.message}): open the dashboard on another master`;
    cluster.masters = cluster.masters.map((m) => ({ ...m, role: 'unknown' }));
  }
  if (location.hash === '#cluster' || location.hash === '') render();
  setTimeout(pollCluster, 500); // the next poll after this one: answers never overlap
}

// ---- pages
const quantity = (q) => {
  if (q === undefined) return 0;
  const m = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q);
  if (m === null) return 0;
  const f = { m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9 }[m[2]] ?? 1;
  return Number(m[1]) * f;
};
const mib = (b) => `${Math.round(b / 1024 ** 2)} Mi`;
const ready = (o) => (o.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
const podState = (p) => {
  if (p.metadata.deletionTimestamp) return 'Terminating';
  const cs = p.status?.containerStatuses ?? [];
  return cs.find((c) => c.state?.waiting?.reason && c.state.waiting.reason !== 'ContainerCreating')?.state.waiting.reason ?? (cs.some((c) => c.state?.running) ? 'Running' : cs.find((c) => c.state?.terminated)?.state.terminated.reason) ?? p.status?.phase ?? 'Pending';
};
const restarts = (p) => (p.status?.containerStatuses ?? []).reduce((n, c) => n + (Number(c.restartCount) || 0), 0);

const pages = {
  cluster() {
    const leader = cluster.masters.find((m) => m.role === 'leader');
    const rows = cluster.masters
      .map((m) => {
        const behind = leader?.commitIndex != null && m.appliedIndex != null ? leader.commitIndex - m.appliedIndex : '';
        const role = m.role === 'leader' ? '<span class="pill ok">leader</span>' : m.role === 'unreachable' ? '<span class="pill bad">unreachable</span>' : esc(m.role);
        const transfer = m.role === 'follower' && leader !== undefined ? `<button data-transfer="${esc(m.name)}">make leader</button>` : '';
        // The store's alarms (NOSPACE: past its quota, writes that add data are refused;
        // CORRUPT, DISKFULL: this master does not serve), each with what it means on hover.
        const alarms = (m.alarms ?? []).map((a) => `<span class="pill bad" data-alarm="${esc(a.type)}" title="${esc(a.message)}">${esc(a.type)}</span>`).join(' ');
        const serving = m.role === 'unreachable' ? '' : m.serving === false ? '<span class="pill bad">not serving</span>' : '';
        return `<tr data-master="${esc(m.name)}" data-role="${esc(m.role)}"><td>${esc(m.name)}</td><td>${role}</td><td>${esc(m.term)}</td><td>${esc(m.commitIndex)}</td><td>${esc(m.appliedIndex)}</td><td>${esc(behind)}</td><td>${serving} ${alarms}</td><td>${transfer}</td></tr>`;
      })
      .join('');
    return `<h2>Masters</h2>${cluster.error ? `<p class="error">${esc(cluster.error)}</p>` : ''}
      <table id="masters" class="keep"><tr><th>Master</th><th>Role</th><th>Term</th><th>Commit</th><th>Applied</th><th>Behind</th><th>Alarms</th><th></th></tr>${rows}</table>
      <h2>Leadership, as seen from this page</h2><ol class="timeline" id="timeline">${cluster.timeline.map((t) => `<li>${t.at.toLocaleTimeString()} — ${esc(t.text)}</li>`).join('')}</ol>`;
  },
  nodes() {
    const nodes = all('nodes');
    const pods = all('pods');
    if (nodes.length === 0) return '<h2>Nodes</h2><p class="muted">No nodes yet: start a worker (flotilla agent).</p>';
    return `<h2>Nodes</h2><div class="cards">${nodes
      .map((n) => {
        const mine = pods.filter((p) => p.spec.nodeName === n.metadata.name);
        const req = (k) => mine.reduce((t, p) => t + p.spec.containers.reduce((s, c) => s + quantity(c.resources?.requests?.[k]), 0), 0);
        const alloc = n.status?.allocatable ?? {};
        return `<div class="card" data-node="${esc(n.metadata.name)}"><h3>${esc(n.metadata.name)} ${ready(n) ? '<span class="pill ok">Ready</span>' : '<span class="pill bad">NotReady</span>'}</h3>
          <div class="muted">${esc(n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address)}</div>
          <div>CPU ${esc(req('cpu').toFixed(2))} of ${esc(quantity(alloc.cpu).toFixed(2))} · memory ${esc(mib(req('memory')))} of ${esc(mib(quantity(alloc.memory)))}</div>
          <div>${esc(mine.length)} pod(s): ${mine.map((p) => esc(p.metadata.name)).join(', ')}</div></div>`;
      })
      .join('')}</div>`;
  },
  workloads() {
    const deployments = all('deployments');
    const pods = all('pods').sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const drows = deployments
      .map((d) => {
        const want = Number(d.spec.replicas ?? 1);
        const have = Number(d.status?.readyReplicas ?? 0);
        return `<tr data-deployment="${esc(d.metadata.name)}"><td>${esc(d.metadata.namespace)}/${esc(d.metadata.name)}</td><td class="${have === want ? 'ok' : 'warn'}">${esc(have)}/${esc(want)}</td><td>${esc(d.status?.updatedReplicas ?? 0)}</td>
          <td><input type="number" min="0" value="${esc(drafts.get(`${d.metadata.namespace}/${d.metadata.name}`) ?? want)}" data-draft="${esc(d.metadata.namespace)}/${esc(d.metadata.name)}" aria-label="replicas of ${esc(d.metadata.name)}"> <button data-scale="${esc(d.metadata.namespace)}/${esc(d.metadata.name)}">scale</button></td></tr>`;
      })
      .join('');
    const prows = pods
      .map((p) => {
        const state = podState(p);
        const cls = state === 'Running' && ready(p) ? 'ok' : state === 'Running' || state === 'Pending' || state === 'ContainerCreating' ? 'warn' : 'bad';
        const id = `${p.metadata.namespace}/${p.metadata.name}`;
        return `<tr data-pod="${esc(p.metadata.name)}"><td>${esc(id)}</td><td class="${cls}">${esc(state)}</td><td>${esc(restarts(p))}</td><td>${esc(p.spec.nodeName ?? '—')}</td><td><button data-logs="${esc(id)}">log</button> <button class="danger" data-delete="${esc(id)}">delete</button></td></tr>`;
      })
      .join('');
    return `<h2>Deployments</h2><table id="deployments"><tr><th>Deployment</th><th>Ready</th><th>Updated</th><th>Scale</th></tr>${drows}</table>
      <h2>Pods</h2><table id="pods"><tr><th>Pod</th><th>Status</th><th>Restarts</th><th>Node</th><th></th></tr>${prows}</table>
      <div id="logbox"></div>`;
  },
  services() {
    const nodes = all('nodes').map((n) => n.metadata.name);
    const endpoints = new Map(all('endpoints').map((e) => [`${e.metadata.namespace}/${e.metadata.name}`, e]));
    const rows = all('services')
      .map((s) => {
        const key = `${s.metadata.namespace}/${s.metadata.name}`;
        const addrs = (endpoints.get(key)?.subsets ?? []).flatMap((ss) => (ss.addresses ?? []).map((a) => ({ ...a, port: ss.ports?.[0]?.port })));
        const perNode = nodes.map((n) => `<div><b>${esc(n)}</b>: ${addrs.map((a) => `<span class="pill ${a.nodeName === n ? 'ok' : 'muted'}">${esc(a.ip)}:${esc(a.port)} ${a.nodeName === n ? 'local' : 'remote'}</span>`).join(' ') || '<span class="muted">no endpoints</span>'}</div>`).join('');
        return `<tr data-service="${esc(s.metadata.name)}"><td>${esc(key)}</td><td>${(s.spec.ports ?? []).map((p) => esc(p.port)).join(', ')}</td><td>${esc(s.spec.internalTrafficPolicy ?? 'Cluster')}</td><td>${perNode}</td></tr>`;
      })
      .join('');
    return `<h2>Services</h2><table id="services"><tr><th>Service</th><th>Port</th><th>Traffic</th><th>Endpoints, as each node's proxy sees them</th></tr>${rows}</table>`;
  },
  events() {
    const events = all('events').sort((a, b) => String(b.lastTimestamp ?? '').localeCompare(String(a.lastTimestamp ?? '')));
    return `<h2>Events</h2><table id="events"><tr><th>When</th><th>Type</th><th>Reason</th><th>Object</th><th>Message</th></tr>${events
      .slice(0, 200)
      .map((e) => `<tr><td>${esc(e.lastTimestamp)}</td><td class="${e.type === 'Warning' ? 'warn' : ''}">${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${esc(e.involvedObject?.kind)}/${esc(e.involvedObject?.name)}</td><td>${esc(e.message)}</td></tr>`)
      .join('')}</table>`;
  },
  apply() {
    return `<h2>Apply YAML</h2><p class="muted">One or more documents; each object is created, or merged into the live one.</p>
      <textarea id="yaml" spellcheck="false">${esc(applyText)}</textarea><p><button id="apply">Apply</button></p><pre id="apply-result"></pre>`;
  },
};
let applyText = '';
/** Replica counts typed but not yet applied: the page re-renders on every change it sees. */
const drafts = new Map();
document.addEventListener('input', (ev) => {
  const key = ev.target.dataset?.draft;
  if (key !== undefined) drafts.set(key, ev.target.value);
});

const RESOURCE = { Deployment: ['apps/v1', 'deployments'], ReplicaSet: ['apps/v1', 'replicasets'], Pod: ['v1', 'pods'], Service: ['v1', 'services'], Namespace: ['v1', 'namespaces', false], Node: ['v1', 'nodes', false], Event: ['v1', 'events'] };
function pathOf(kind, namespace, name) {
  const r = RESOURCE[kind];
  if (r === undefined) throw new Error(`the dashboard cannot apply a ${kind}`);
  const base = r[0] === 'v1' ? '/api/v1' : `/apis/${r[0]}`;
  return `${base}${r[2] === false ? '' : `/namespaces/${encodeURIComponent(namespace ?? 'default')}`}/${r[1]}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

async function applyYaml(text) {
  const out = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`not valid YAML: ${doc.errors[0].message.split('\n')[0]}`);
    const o = doc.toJS();
    if (o == null) continue;
    if (typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') throw new Error('every object needs kind and metadata.name');
    const ns = o.metadata.namespace ?? 'default';
    delete o.metadata.resourceVersion; // a copy of `get -o yaml` must not conflict
    let exists = true;
    try {
      await api('GET', pathOf(o.kind, ns, o.metadata.name));
    } catch (err) {
      if (err.status !== 404) throw err;
      exists = false;
    }
    if (exists) await api('PATCH', pathOf(o.kind, ns, o.metadata.name), o, 'application/merge-patch+json');
    else await api('POST', pathOf(o.kind, ns), o);
    out.push(`${o.kind.toLowerCase()}/${o.metadata.name} ${exists ? 'configured' : 'created'}`);
  }
  return out.join('\n');
}

// ---- rendering (coalesced to one per frame) and actions
let queued = false;
let lastHtml = '';
function render() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    const page = (location.hash || '#cluster').slice(1);
    if (page === 'apply' && $('#yaml') !== null) return; // do not wipe what is being typed
    const focused = document.activeElement;
    if (focused !== null && focused.tagName === 'INPUT' && $('#page').contains(focused)) {
      setTimeout(render, 300); // typing a number: render once the field is left
      return;
    }
    const f = pages[page] ?? pages.cluster;
    const html = f();
    // Only when something shown changed: replacing the elements under the pointer would lose
    // clicks (and what is typed).
    if (html !== lastHtml) {
      lastHtml = html;
      const log = $('#logbox')?.innerHTML;
      $('#page').innerHTML = html;
      if (log !== undefined && $('#logbox') !== null) $('#logbox').innerHTML = log;
    }
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.getAttribute('href') === `#${page}`);
  });
}

let logAbort;
async function followLog(id) {
  logAbort?.abort();
  logAbort = new AbortController();
  const [ns, name] = id.split('/');
  $('#logbox').innerHTML = `<h2>Log of ${esc(id)}</h2><pre class="log" id="log"></pre>`;
  try {
    const res = await fetch(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}/log?follow=true&tailLines=200`, { headers: { authorization: `Bearer ${token}` }, signal: logAbort.signal });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message ?? `HTTP ${res.status}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const pre = $('#log');
      if (pre === null) return;
      pre.textContent += decoder.decode(value, { stream: true });
      pre.scrollTop = pre.scrollHeight;
    }
  } catch (err) {
    if (err.name !== 'AbortError' && $('#log') !== null) $('#log').textContent += `\n[${err.message}]`;
  }
}

document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button');
  if (b === null) return;
  try {
    if (b.dataset.scale) {
      const [ns, name] = b.dataset.scale.split('/');
      const text = b.parentElement.querySelector('input').value.trim();
      if (!/^\d+$/.test(text)) throw new Error(`replicas must be a whole number, not "${text}"`);
      const replicas = Number(text);
      drafts.delete(b.dataset.scale);
      await api('PATCH', `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/deployments/${encodeURIComponent(name)}/scale`, { spec: { replicas } }, 'application/merge-patch+json');
    } else if (b.dataset.delete) {
      const [ns, name] = b.dataset.delete.split('/');
      await api('DELETE', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`);
    } else if (b.dataset.logs) {
      void followLog(b.dataset.logs);
    } else if (b.dataset.transfer) {
      await api('POST', '/flotilla/v1/cluster/transfer', { to: b.dataset.transfer });
    } else if (b.id === 'apply') {
      applyText = $('#yaml').value;
      $('#apply-result').textContent = await applyYaml(applyText);
    }
  } catch (err) {
    alert(err.message);
  }
});

async function start() {
  try {
    const me = await api('GET', '/api/v1/namespaces');
    void me;
  } catch (err) {
    $('#signin').hidden = false;
    $('#tabs').hidden = true;
    $('#signin-error').textContent = token === '' ? '' : err.status === 401 ? `The cluster refused that token: ${err.message}` : `The cluster could not be asked (${err.message}); try again, or open the dashboard on another master`;
    return;
  }
  $('#signin').hidden = true;
  $('#tabs').hidden = false;
  $('#who').textContent = `signed in · served by ${location.host}`;
  followFor((location.hash || '#cluster').slice(1));
  if (!polling) {
    polling = true;
    void pollCluster();
  }
  render();
}

$('#signin').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem('flotilla-token', token);
  void start();
});
window.addEventListener('hashchange', () => {
  logAbort?.abort();
  lastHtml = '';
  if (!$('#tabs').hidden) followFor((location.hash || '#cluster').slice(1));
  render();
});
void start();
