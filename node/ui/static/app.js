// dialkv dashboard. Polls this node's /v1/status and every member's /v1/stats once a second and
// redraws the page from them. No libraries, no build step, nothing fetched from outside the
// cluster: members' addresses come from /v1/status, and the scheme from this page's location.
//
// Failure behaviour: a member that does not answer /v1/stats is marked on its card and left out of
// the charts; when this node stops answering /v1/status a banner says so, the last cluster map
// stays on screen (marked stale) and the charts keep polling the members that still answer.
'use strict';

(() => {
  const POLL_MS = 1000;
  const STATUS_TIMEOUT_MS = 2500; // status fans out to members for up to 500 ms
  const STATS_TIMEOUT_MS = 1500;
  const NOW_SECONDS = 10; // the live numbers average this many complete seconds
  const WINDOW_SECONDS = 300; // at most what /v1/stats keeps
  const MIN_WINDOW_SECONDS = 60; // the window starts at the first activity, but shows at least this
  const LEVELS = ['strong', 'bounded', 'session', 'eventual'];
  const SVG_NS = 'http://www.w3.org/2000/svg'; // a namespace name, never fetched
  const COLOR = { ops: '#0550ae', errors: '#cf222e', p50: '#1a7f37', p99: '#8250df', lag: '#953800' };
  const NODE_COLORS = ['#0550ae', '#cf222e', '#1a7f37', '#8250df', '#953800', '#1b7c83', '#bf3989', '#57606a'];

  const state = {
    status: null, // last StatusResponse that arrived
    statusOK: false, // whether the last poll of /v1/status answered
    lastOK: 0, // Date.now() of that answer
    statusError: '',
    stats: new Map(), // node id -> {ok, resp, error}
    polls: 0,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- fetching ---------------------------------------------------------------------------

  // getJSON fetches url as a simple CORS request (GET, safelisted headers only, so no preflight).
  async function getJSON(url, timeoutMs) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const resp = await fetch(url, { signal: ctl.signal, cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      return await resp.json();
    } catch (e) {
      if (e.name === 'AbortError') throw new Error('no answer within ' + timeoutMs / 1000 + ' s');
      if (e instanceof TypeError) throw new Error('unreachable');
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // memberBase turns a member's listen address (host:port) into a URL base this browser can use.
  // An unspecified host (":7001", "0.0.0.0:7001", "[::]:7001") means the host this page came from.
  function memberBase(addr) {
    const m = /^(.*):(\d+)$/.exec(addr || '');
    if (!m) return null;
    let host = m[1];
    if (host === '' || host === '0.0.0.0' || host === '[::]' || host === '::') host = location.hostname;
    return location.protocol + '//' + host + ':' + m[2];
  }

  function isServing(n) {
    return state.status && n.id === state.status.node;
  }

  async function fetchStats(n) {
    let url = '../v1/stats'; // relative, so the page also works behind a proxy that adds a path
    if (!isServing(n)) {
      const base = memberBase(n.http);
      if (!base) {
        state.stats.set(n.id, { ok: false, error: 'no address known' });
        return;
      }
      url = base + '/v1/stats';
    }
    try {
      const resp = await getJSON(url, STATS_TIMEOUT_MS);
      if (resp.node !== n.id) {
        // Its address is another node's now: those stats are that node's, counted under its id.
        state.stats.set(n.id, { ok: false, error: String(resp.node) + ' answers at its address' });
        return;
      }
      state.stats.set(n.id, { ok: true, resp });
    } catch (e) {
      state.stats.set(n.id, { ok: false, error: e.message });
    }
  }

  async function poll() {
    const started = performance.now();
    try {
      try {
        state.status = await getJSON('../v1/status', STATUS_TIMEOUT_MS);
        state.statusOK = true;
        state.lastOK = Date.now();
      } catch (e) {
        state.statusOK = false;
        state.statusError = e.message;
      }
      const nodes = (state.status && state.status.nodes) || [];
      const ids = new Set(nodes.map((n) => n.id));
      for (const id of state.stats.keys()) if (!ids.has(id)) state.stats.delete(id);
      await Promise.all(nodes.map(fetchStats));
      state.polls++;
      render();
    } catch (e) {
      console.error('dashboard: poll failed', e); // a bug in render must not stop the polling
    } finally {
      setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - started)));
    }
  }

  // ---- aggregation ------------------------------------------------------------------------

  // aggregate merges the members' per-second series on their Unix seconds. Each node's newest
  // point is the second in progress and is left out, so the tail of a chart never dips.
  function aggregate() {
    const answered = [];
    for (const [id, s] of state.stats) {
      if (s.ok && s.resp && Array.isArray(s.resp.seconds) && s.resp.seconds.length > 1) answered.push([id, s.resp]);
    }
    answered.sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }));
    if (answered.length === 0) return null;
    // The window is the span every answering node covers, so sums never step at its edges: it
    // ends at the earliest newest complete second, as one node's may be another's in progress
    // (the fetches straddled a second's end, or its clock is a little ahead).
    let t1 = Infinity;
    let t0 = -Infinity;
    for (const [, r] of answered) {
      t1 = Math.min(t1, r.seconds[r.seconds.length - 2]);
      t0 = Math.max(t0, r.seconds[0]);
    }
    t0 = Math.max(t0, t1 - WINDOW_SECONDS + 1);
    if (t0 > t1) t0 = t1;
    const n = t1 - t0 + 1;
    const zeros = () => new Array(n).fill(0);
    const gaps = () => new Array(n).fill(null);
    const levels = new Map();
    const backlog = new Map();
    const lag = gaps();
    for (const [id, r] of answered) {
      const last = r.seconds.length - 1; // in progress: skipped
      const nodeBacklog = gaps();
      backlog.set(id, nodeBacklog);
      for (let i = 0; i < last; i++) {
        const k = r.seconds[i] - t0;
        if (k < 0 || k >= n) continue;
        if (r.backlog && r.backlog[i] !== undefined) nodeBacklog[k] = r.backlog[i];
        const cl = r.commit_lag_p99_ms && r.commit_lag_p99_ms[i];
        if (cl > 0) lag[k] = Math.max(lag[k] || 0, cl);
      }
      for (const [level, ser] of Object.entries(r.levels || {})) {
        if (!levels.has(level)) levels.set(level, { ops: zeros(), errors: zeros(), p50: gaps(), p99: gaps() });
        const L = levels.get(level);
        for (let i = 0; i < last; i++) {
          const k = r.seconds[i] - t0;
          if (k < 0 || k >= n) continue;
          const ops = (ser.ops && ser.ops[i]) || 0;
          L.ops[k] += ops;
          L.errors[k] += (ser.errors && ser.errors[i]) || 0;
          if (ops > 0) {
            L.p50[k] = Math.max(L.p50[k] || 0, (ser.p50_ms && ser.p50_ms[i]) || 0);
            L.p99[k] = Math.max(L.p99[k] || 0, (ser.p99_ms && ser.p99_ms[i]) || 0);
          }
        }
      }
    }
    // Leading seconds with nothing at all (a young cluster) are cut, so activity is not squeezed
    // into the right edge of the charts.
    let first = n;
    const active = (a) => a.findIndex((v) => v !== null && v > 0);
    for (const L of levels.values()) first = Math.min(first, ...[L.ops, L.errors].map(active).filter((k) => k >= 0));
    for (const b of backlog.values()) if (active(b) >= 0) first = Math.min(first, active(b));
    if (active(lag) >= 0) first = Math.min(first, active(lag));
    const cut = Math.max(0, Math.min(first, n - MIN_WINDOW_SECONDS));
    if (cut > 0) {
      for (const L of levels.values()) for (const k of Object.keys(L)) L[k] = L[k].slice(cut);
      for (const [id, b] of backlog) backlog.set(id, b.slice(cut));
      return { t0: t0 + cut, t1, n: n - cut, levels, backlog, lag: lag.slice(cut), answered: answered.map((a) => a[0]) };
    }
    return { t0, t1, n, levels, backlog, lag, answered: answered.map((a) => a[0]) };
  }

  // recent is where the live numbers' seconds start in the aggregate, and span how many there are.
  const recent = (agg) => Math.max(0, agg.n - NOW_SECONDS);
  const span = (agg) => Math.min(agg.n, NOW_SECONDS);

  const sum = (a, from = 0) => a.slice(from).reduce((s, v) => s + (v || 0), 0);
  const maxOf = (a, from = 0) => a.slice(from).reduce((m, v) => (v !== null && v > m ? v : m), 0);

  // ---- formatting -------------------------------------------------------------------------

  function fmtRate(v) {
    if (Number.isInteger(v)) return String(v);
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(v === 0 ? 0 : 2);
  }

  function fmtMs(v) {
    if (!v) return '0 ms';
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' s';
    if (v >= 10) return v.toFixed(0) + ' ms';
    if (v >= 1) return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + ' ms';
    return v.toFixed(2) + ' ms';
  }

  function fmtCount(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  const fmtSpan = (s) => (s % 60 === 0 ? s / 60 + ' min' : s + ' s');

  const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

  function setNumber(id, value, text) {
    const e = $(id);
    e.dataset.value = String(value);
    e.textContent = text;
  }

  // ---- rendering --------------------------------------------------------------------------

  function render() {
    document.body.dataset.polls = String(state.polls);
    document.body.dataset.serving = state.statusOK ? 'ok' : 'down';
    renderHeader();
    renderBanner();
    renderCluster();
    const agg = aggregate();
    renderNumbers(agg);
    renderLevels(agg);
    renderEventual(agg);
  }

  function renderHeader() {
    const st = state.status;
    $('serving-node').textContent = st ? st.node : '?';
    const leader = $('leader');
    leader.dataset.value = (st && st.leader) || '';
    leader.textContent = st ? st.leader || 'none known' : '?';
    setNumber('term', st ? st.term : '', st ? String(st.term) : '?');
    setNumber('commit-index', st ? st.commit_index : '', st ? String(st.commit_index) : '?');
    const t = $('last-update');
    if (state.lastOK) {
      t.setAttribute('datetime', new Date(state.lastOK).toISOString());
      let text = fmtTime(state.lastOK);
      if (!state.statusOK) text += ' (' + Math.round((Date.now() - state.lastOK) / 1000) + ' s ago)';
      t.textContent = text;
    }
  }

  function renderBanner() {
    const b = $('banner');
    if (state.statusOK) {
      b.hidden = true;
      b.textContent = '';
      return;
    }
    const who = state.status ? state.status.node + ' (' + location.host + ')' : location.host;
    const since = state.lastOK ? 'since ' + fmtTime(state.lastOK) : 'since this page opened';
    b.replaceChildren(
      'The node serving this page, ' + who + ', has not answered ' + since + ': ' + state.statusError + '. ',
      state.status ? 'Its last view of the cluster is shown, marked stale; the charts still use the members that answer.' : ''
    );
    const others = ((state.status && state.status.nodes) || []).filter((n) => !isServing(n) && memberBase(n.http));
    if (others.length) {
      b.append(' Open another node\'s dashboard: ');
      others.forEach((n, i) => {
        if (i) b.append(', ');
        b.append(el('a', { href: memberBase(n.http) + '/ui/' }, n.id));
      });
    }
    b.hidden = false;
  }

  function renderCluster() {
    const box = $('cluster');
    const st = state.status;
    if (!st) return;
    const nodes = [...(st.nodes || [])].sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
    box.dataset.count = String(nodes.length);
    box.replaceChildren(...nodes.map(nodeCard));
    if (nodes.length === 0) box.append(el('p', { class: 'empty' }, 'The node reports no members.'));
  }

  function nodeCard(n) {
    let health = n.health || 'unknown';
    let reason = n.reason || '';
    const serving = isServing(n);
    if (serving && !state.statusOK) {
      health = 'down';
      reason = 'not answering this page: ' + state.statusError;
    }
    const role = n.role || 'unknown';
    const s = state.stats.get(n.id);
    const statsOK = !!(s && s.ok);
    const card = el('article', {
      class: 'node',
      'data-node': n.id,
      'data-role': role,
      'data-health': health,
      'data-gossip': n.gossip || '',
      'data-stats': statsOK ? 'ok' : 'down',
      'data-stale': state.statusOK ? 'false' : 'true',
      'aria-label': n.id + ': ' + role + ', ' + health,
    });
    const base = memberBase(n.http);
    const addr = serving ? el('span', null, n.http || location.host, ' ', el('small', null, '(this page)'))
      : base ? el('a', { href: base + '/ui/', title: 'this node\'s dashboard' }, n.http) : n.http || 'not known';
    card.append(
      el('header', null,
        el('h3', null, n.id),
        el('span', { class: 'badge role-' + role, 'data-field': 'role' }, role === 'leader' ? '★ leader' : role),
        el('span', { class: 'badge health-' + health, 'data-field': 'health' }, health)));
    if (reason) card.append(el('p', { class: 'reason', 'data-field': 'reason', title: reason }, reason));
    card.append(
      el('dl', null,
        ...field('gossip', 'gossip', n.gossip || '—'),
        ...field('term', 'term', n.term ?? '—'),
        ...field('applied', 'applied-index', n.applied_index ?? '—'),
        // A member the serving node could not ask has no term (and any node that has heard from
        // a leader has one): its backlog of 0 is a placeholder, not a report.
        ...field('backlog', 'backlog', n.term ? n.backlog ?? 0 : '—'),
        ...field('contact', 'last-contact', role === 'leader' ? '—' : n.last_contact || '—'),
        ...field('suffrage', 'suffrage', n.suffrage || '—'),
        ...field('http', 'http', addr)),
      el('p', { class: 'stats-note', 'data-field': 'stats' }, statsNote(n.id, s)));
    return card;
  }

  function field(label, name, value) {
    return [el('dt', null, label), el('dd', { 'data-field': name }, value)];
  }

  function statsNote(id, s) {
    if (!s) return 'stats: not asked yet';
    if (!s.ok) return 'stats: no answer (' + s.error + '); left out of the charts';
    const r = s.resp;
    const last = (r.seconds || []).length - 1;
    let ops = 0;
    for (const ser of Object.values(r.levels || {})) ops += sum((ser.ops || []).slice(Math.max(0, last - NOW_SECONDS), last));
    return 'stats: ' + fmtRate(ops / NOW_SECONDS) + ' req/s (last ' + NOW_SECONDS + ' s)';
  }

  function renderNumbers(agg) {
    if (!agg) {
      for (const id of ['ops-rate', 'errors-rate', 'p99-now', 'ops-window', 'backlog-total', 'commit-lag-now']) setNumber(id, 0, '–');
      $('window').textContent = 'no member answered /v1/stats';
      return;
    }
    const from = recent(agg);
    let ops = 0, errors = 0, windowOps = 0, p99 = 0;
    for (const L of agg.levels.values()) {
      ops += sum(L.ops, from);
      errors += sum(L.errors, from);
      windowOps += sum(L.ops);
      p99 = Math.max(p99, maxOf(L.p99, from));
    }
    setNumber('ops-rate', ops / span(agg), fmtRate(ops / span(agg)));
    setNumber('errors-rate', errors / span(agg), fmtRate(errors / span(agg)));
    setNumber('p99-now', p99, ops ? fmtMs(p99) : '–');
    setNumber('ops-window', windowOps, fmtCount(windowOps));
    // The largest node's backlog at the window's end, not the sum: each node holds a copy of
    // every write gossip brought it, so a sum counts an uncommitted write about once per node.
    // From the members' stats like the numbers beside it, not from the serving node's status,
    // which stays on screen unchanged while that node does not answer.
    let backlog = 0;
    for (const b of agg.backlog.values()) backlog = Math.max(backlog, b[agg.n - 1] || 0);
    setNumber('backlog-total', backlog, fmtCount(backlog));
    const lag = maxOf(agg.lag, from);
    setNumber('commit-lag-now', lag, lag ? fmtMs(lag) : '–');
    const missing = [...state.stats].filter(([, s]) => !s.ok).map(([id]) => id);
    $('window').textContent = 'last ' + (agg.n < 120 ? agg.n + ' s' : Math.round(agg.n / 60) + ' min') + ' to ' + fmtTime(agg.t1 * 1000) + ', from ' +
      agg.answered.join(', ') + (missing.length ? '; no stats from ' + missing.join(', ') : '');
  }

  function renderLevels(agg) {
    const box = $('levels');
    const names = [...LEVELS];
    if (agg) for (const l of agg.levels.keys()) if (!names.includes(l)) names.push(l);
    for (const name of names) {
      let row = box.querySelector('[data-level="' + CSS.escape(name) + '"]');
      if (!row) {
        row = el('section', { class: 'level', 'data-level': name, 'aria-label': name + ' requests' },
          el('h3', null, name, el('span', { class: 'level-now', 'data-field': 'now' }, '')),
          el('figure', { class: 'chart-box' }, el('figcaption', null, 'throughput (req/s)'), el('div', { class: 'chart', 'data-chart': 'throughput' })),
          el('figure', { class: 'chart-box' }, el('figcaption', null, 'latency, worst node (ms)'), el('div', { class: 'chart', 'data-chart': 'latency' })));
        box.append(row);
      }
      const L = agg && agg.levels.get(name);
      const from = agg ? recent(agg) : 0;
      const now = row.querySelector('[data-field="now"]');
      if (L) {
        const ops = sum(L.ops, from) / span(agg);
        now.textContent = fmtRate(ops) + ' req/s · ' + fmtRate(sum(L.errors, from) / span(agg)) + ' errors/s · p99 ' +
          (ops ? fmtMs(maxOf(L.p99, from)) : '–') + ' (last ' + NOW_SECONDS + ' s)';
        row.dataset.ops = String(ops);
      } else {
        now.textContent = 'no requests in the window';
        row.dataset.ops = '0';
      }
      drawChart(row.querySelector('[data-chart="throughput"]'), agg, L ? [
        { name: 'requests/s', color: COLOR.ops, values: L.ops },
        { name: 'errors/s (5xx)', color: COLOR.errors, values: L.errors, dashed: true },
      ] : [], { format: fmtRate, label: name + ' throughput' });
      drawChart(row.querySelector('[data-chart="latency"]'), agg, L ? [
        { name: 'p50', color: COLOR.p50, values: L.p50 },
        { name: 'p99', color: COLOR.p99, values: L.p99 },
      ] : [], { format: fmtMs, label: name + ' latency' });
    }
  }

  function renderEventual(agg) {
    // A node keeps its colour while others come and go: colours follow the sorted member list.
    const ids = ((state.status && state.status.nodes) || []).map((n) => n.id)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const series = [];
    if (agg) {
      for (const [id, values] of agg.backlog) {
        const i = ids.indexOf(id);
        series.push({ name: id, color: NODE_COLORS[(i < 0 ? ids.length : i) % NODE_COLORS.length], values });
      }
    }
    drawChart($('chart-backlog'), agg, series, { format: fmtCount, label: 'backlog per node', integer: true });
    drawChart($('chart-commit-lag'), agg, agg ? [{ name: 'commit lag p99, worst node', color: COLOR.lag, values: agg.lag }] : [],
      { format: fmtMs, label: 'eventual commit lag p99' });
  }

  // ---- charts -----------------------------------------------------------------------------

  // niceMax rounds v up to 1, 2 or 5 times a power of ten, so axis labels read well.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // drawChart draws one small line chart of per-second values (null: no data that second) over
  // the aggregate's window, with the legend under it.
  function drawChart(box, agg, series, opts) {
    const W = Math.max(220, Math.round(box.clientWidth || 300));
    const H = 96;
    const m = { l: 46, r: 8, t: 6, b: 18 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
    let top = 0;
    for (const s of series) top = Math.max(top, maxOf(s.values));
    const yMax = opts.integer ? Math.max(2, niceMax(top)) : niceMax(top);
    const y = (v) => m.t + ph - (v / yMax) * ph;
    for (const f of [0, 0.5, 1]) {
      const yy = y(f * yMax);
      root.append(svg('line', { class: f === 0 ? 'axis' : 'grid', x1: m.l, x2: W - m.r, y1: yy, y2: yy }));
      root.append(svg('text', { x: m.l - 4, y: yy + 3, 'text-anchor': 'end' }, opts.format(f * yMax)));
    }
    const n = agg ? agg.n : WINDOW_SECONDS;
    const x = (k) => m.l + (n <= 1 ? pw : (k / (n - 1)) * pw);
    const step = n <= 90 ? 15 : n <= 180 ? 30 : 60;
    for (let back = 0; back < n; back += step) {
      const k = n - 1 - back;
      root.append(svg('line', { class: 'grid', x1: x(k), x2: x(k), y1: m.t, y2: m.t + ph }));
      root.append(svg('text', { x: x(k), y: H - 5, 'text-anchor': back === 0 ? 'end' : 'middle' }, back === 0 ? 'now' : '-' + fmtSpan(back)));
    }
    root.append(svg('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph }));
    const summary = [];
    for (const s of series) {
      let d = '';
      let run = 0;
      for (let k = 0; k < s.values.length; k++) {
        const v = s.values[k];
        if (v === null || v === undefined) {
          if (run === 1) d += 'h0.01'; // a lone point still shows (round caps)
          run = 0;
          continue;
        }
        d += (run ? 'L' : 'M') + x(k).toFixed(1) + ' ' + y(v).toFixed(1);
        run++;
      }
      if (run === 1) d += 'h0.01';
      if (d) {
        const attrs = { class: 'series', d, stroke: s.color, 'stroke-linecap': 'round' };
        if (s.dashed) attrs['stroke-dasharray'] = '4 3';
        root.append(svg('path', attrs));
      }
      const latest = [...s.values].reverse().find((v) => v !== null && v !== undefined);
      summary.push(s.name + ' now ' + opts.format(latest || 0) + ', peak ' + opts.format(maxOf(s.values)));
    }
    if (!agg || series.length === 0 || top === 0) {
      root.append(svg('text', { class: 'nodata', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' },
        agg ? 'nothing in the window' : 'no stats from any member'));
    }
    root.setAttribute('aria-label', opts.label + ': ' + (summary.join('; ') || 'no data'));
    root.append(svg('title', {}, opts.label));
    const legend = el('ul', { class: 'legend' });
    for (const s of series) {
      const li = el('li', { class: s.dashed ? 'dashed' : '' }, s.name);
      li.style.setProperty('--swatch', s.color);
      legend.append(li);
    }
    box.replaceChildren(root, legend);
  }

  poll();
})();
