/**
 * The status page's only script, inline and allowed by its hash in the Content-Security-Policy
 * (no external asset, no CDN, no eval). It sends the admin API calls of the buttons (after a
 * confirmation), and every 2 s reads `api/stats?since=…` and `api/nodes` to update the table's
 * cells and draw the charts as SVG polylines. Without JavaScript the table is still complete:
 * the server renders it.
 *
 * Why no chart library: five line charts of at most 900 points each are ~60 lines of SVG code,
 * while uPlot (the smallest well-kept one) would add 45 kB to vendor and a second hash to keep.
 */
export const STATUS_SCRIPT = `
'use strict';
var WINDOW = 900;
var PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];
var data = null;
var message = document.getElementById('message');

document.addEventListener('click', async function (event) {
  var button = event.target.closest('button[data-node]');
  if (!button) return;
  var row = button.closest('tr');
  var body = {};
  if (button.dataset.state) body.state = button.dataset.state;
  if (button.dataset.weight !== undefined) body.weight = Number(row.querySelector('input[name=weight]').value);
  var what = body.state ? 'Put ' + button.dataset.node + ' in ' + body.state + '?' : 'Set the weight of ' + button.dataset.node + ' to ' + body.weight + '?';
  if (!window.confirm(what)) return;
  button.disabled = true;
  var res = await fetch('api/nodes/' + encodeURIComponent(button.dataset.node), {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  });
  if (!res.ok) {
    var problem = await res.json().catch(function () { return { error: { message: res.statusText } }; });
    message.textContent = problem.error.message;
    message.className = 'bad';
  } else {
    message.textContent = button.dataset.node + ' updated';
    message.className = 'ok';
  }
  await refresh();
});

function text (row, field, value) {
  var cell = row.querySelector('[data-field="' + field + '"]');
  if (cell && cell.textContent !== String(value)) cell.textContent = String(value);
}
function ms (v) { return v === null ? '–' : String(v); }
function bytes (n) {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
  return (n / 1073741824).toFixed(2) + ' GiB';
}

function updateTable (nodes, summary) {
  nodes.forEach(function (n) {
    var row = document.querySelector('tr[data-node-row="' + CSS.escape(n.name) + '"]');
    if (!row) return;
    var s = summary.nodes[n.name];
    var badge = row.querySelector('[data-field="status"]');
    if (badge && badge.textContent !== n.status) { badge.textContent = n.status; badge.className = 'badge ' + n.status; }
    text(row, 'state', n.state);
    text(row, 'health', n.health);
    text(row, 'active', n.activeConnections);
    var q = row.querySelector('[data-field="queued"]');
    if (q) q.textContent = n.queued > 0 ? ' +' + n.queued + ' queued' : '';
    text(row, 'requests', n.requests);
    text(row, 'errors', n.errors);
    row.querySelectorAll('button[data-state]').forEach(function (b) { b.disabled = b.dataset.state === n.state; });
    if (!s) return;
    text(row, 'rate', s.rate);
    text(row, 'latency', ms(s.p50) + ' / ' + ms(s.p95) + ' / ' + ms(s.p99));
    text(row, 'classes', s.responses['2xx'] + ' / ' + s.responses['3xx'] + ' / ' + s.responses['4xx'] + ' / ' + s.responses['5xx']);
    text(row, 'bytes', bytes(s.bytesOut));
  });
}

function append (a, b) {
  var out = a.concat(b);
  return out.length > WINDOW ? out.slice(out.length - WINDOW) : out;
}
function merge (old, next) {
  if (old === null) return next.series;
  var s = old;
  function join (x, y) { Object.keys(y).forEach(function (k) { x[k] = Array.isArray(y[k]) ? append(x[k] || [], y[k]) : join(x[k] || {}, y[k]); }); return x; }
  return join(s, next.series);
}

function draw (id, lines) {
  var svg = document.getElementById(id);
  if (!svg) return;
  var W = 600, H = 150, L = 44, B = 16;
  var max = 0;
  lines.forEach(function (l) { l.values.forEach(function (v) { if (v !== null && v > max) max = v; }); });
  var top = max === 0 ? 1 : max * 1.1;
  var n = data.t.length;
  var parts = ['<line x1="' + L + '" y1="' + (H - B) + '" x2="' + W + '" y2="' + (H - B) + '" class="axis"/>',
    '<text x="' + (L - 4) + '" y="12" class="tick">' + (Math.round(top * 10) / 10) + '</text>',
    '<text x="' + (L - 4) + '" y="' + (H - B) + '" class="tick">0</text>',
    '<text x="' + L + '" y="' + H + '" class="tick start">' + Math.round(n / 60) + ' min ago</text>',
    '<text x="' + W + '" y="' + H + '" class="tick">now</text>'];
  lines.forEach(function (l) {
    var pts = [];
    l.values.forEach(function (v, i) {
      if (v === null) return;
      var x = L + (n <= 1 ? 0 : i * (W - L) / (n - 1));
      var y = (H - B) - v / top * (H - B - 6);
      pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    });
    if (pts.length > 0) parts.push('<polyline fill="none" stroke="' + l.color + '" stroke-width="' + (l.width || 1.5) + '" points="' + pts.join(' ') + '"/>');
  });
  svg.innerHTML = parts.join('');
  svg.setAttribute('data-points', String(n));
  svg.setAttribute('data-last', String(n > 0 ? data.t[n - 1] : 0));
}

function legend (id, items) {
  var el = document.getElementById(id);
  if (!el) return;
  el.innerHTML = items.map(function (i) { return '<span><i style="background:' + i.color + '"></i>' + i.name.replace(/[&<>"]/g, '') + '</span>'; }).join(' ');
}

function render (nodes) {
  var names = Object.keys(data.nodes);
  var colors = {};
  names.forEach(function (name, i) { colors[name] = PALETTE[i % PALETTE.length]; });
  var perNode = function (field) { return names.map(function (name) { return { color: colors[name], values: data.nodes[name][field] }; }); };
  var nodeLegend = names.map(function (name) { return { name: name, color: colors[name] }; });
  draw('chart-rate', [{ color: '#111827', width: 2, values: data.total.requests }].concat(perNode('requests')));
  legend('legend-rate', [{ name: 'total', color: '#111827' }].concat(nodeLegend));
  draw('chart-latency', perNode('p99'));
  legend('legend-latency', nodeLegend);
  draw('chart-errors', names.map(function (name) {
    var d = data.nodes[name];
    return { color: colors[name], values: d.s5xx.map(function (v, i) { return v + d.errors[i]; }) };
  }));
  legend('legend-errors', nodeLegend);
  var rc = { sticky: '#059669', new: '#2563eb', moved: '#dc2626' };
  draw('chart-routes', ['sticky', 'new', 'moved'].map(function (r) { return { color: rc[r], values: data.routes[r] }; }));
  legend('legend-routes', ['sticky', 'new', 'moved'].map(function (r) { return { name: r, color: rc[r] }; }));
  draw('chart-cache', [{ color: '#111827', width: 2, values: hitRate(data.total) }].concat(names.map(function (name) {
    return { color: colors[name], values: hitRate(data.nodes[name]) };
  })));
  legend('legend-cache', [{ name: 'all', color: '#111827' }].concat(nodeLegend));
}

// Per second: the share of reported session reads the near-cache served, in %; a gap (null)
// for a second in which no read was reported.
function hitRate (series) {
  return series.cacheHits.map(function (h, i) {
    var all = h + series.cacheMisses[i];
    return all === 0 ? null : Math.round(h / all * 1000) / 10;
  });
}
function percent (rate) { return rate === null || rate === undefined ? '–' : (rate * 100).toFixed(1) + ' %'; }

var since = null;
async function refresh () {
  try {
    var res = await Promise.all([fetch(since === null ? 'api/stats' : 'api/stats?since=' + since), fetch('api/nodes')]);
    if (!res[0].ok || !res[1].ok) throw new Error('admin API answered ' + res[0].status + '/' + res[1].status);
    var stats = await res[0].json();
    var nodes = (await res[1].json()).nodes;
    data = merge(data, stats);
    since = stats.now;
    updateTable(nodes, stats.summary);
    Object.keys(stats.totals.moves).forEach(function (cause) {
      var cell = document.querySelector('[data-move="' + cause + '"]');
      if (cell) cell.textContent = String(stats.totals.moves[cause]);
    });
    document.querySelectorAll('[data-cache]').forEach(function (cell) {
      var name = cell.getAttribute('data-cache');
      var s = name === '' ? stats.summary.total : stats.summary.nodes[name];
      cell.textContent = percent(s ? s.cacheHitRate : null);
    });
    Object.keys(stats.totals.routes).forEach(function (route) {
      var cell = document.querySelector('[data-route="' + route + '"]');
      if (cell) cell.textContent = String(stats.totals.routes[route]);
    });
    render(nodes);
    document.body.setAttribute('data-live', 'on');
  } catch (err) {
    message.textContent = 'live update failed: ' + err.message;
    message.className = 'bad';
  }
}
var live = document.getElementById('live');
live.checked = sessionStorage.getItem('tether-live') !== 'off';
live.addEventListener('change', function () { sessionStorage.setItem('tether-live', live.checked ? 'on' : 'off'); });
refresh();
setInterval(function () { if (live.checked) refresh(); }, 2000);
`
