// orbitnet's browser view: one script, no libraries, no build step.
// It reads the JSON endpoints of docs/ui.md (all URLs relative: the page is served at / and at
// /ui/<namespace>/<name>/) and draws on one 2D canvas.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const canvas = $('map');
  const ctx = canvas.getContext('2d');
  const tlCanvas = $('timeline');
  const tlCtx = tlCanvas.getContext('2d');
  const tip = $('tip');

  const DEG = Math.PI / 180;
  const EARTH_KM = 6371;
  const SAT = 0, STATION = 1, PLATFORM = 2;

  // ---- colours ------------------------------------------------------------------------
  // Shells get a hue each; planes alternate between two lightnesses of it, so neighbouring
  // planes are told apart without one colour per plane.
  const SHELL_HUES = [199, 84, 275, 28, 330, 165, 55, 0];
  const shellColour = (s, light) => `hsl(${SHELL_HUES[s % SHELL_HUES.length]},85%,${light ? 74 : 56}%)`;
  const OTHER_SAT = '#cbd5e1'; // TLE satellites: no shell
  const STATION_COLOUR = '#fde047';
  const PLATFORM_COLOUR = '#fb7185';
  const DOWN_COLOUR = '#ff3b3b';
  const PATH_COLOUR = '#fffb8f';
  const NB = 10; // gradient buckets: one stroke per bucket
  const DELAY_COLOURS = [], LOSS_COLOURS = [];
  for (let i = 0; i < NB; i++) {
    const f = i / (NB - 1);
    DELAY_COLOURS.push(`hsl(${180 + f * 130},80%,${58 + f * 6}%)`); // cyan (short) → magenta (long)
    // green 0 % → amber 5 % → red 10 %
    LOSS_COLOURS.push(f < 0.5 ? `hsl(${140 - f * 2 * 100},85%,50%)` : `hsl(${40 - (f - 0.5) * 2 * 40},90%,55%)`);
  }
  const LOSS_MAX = 10;

  // ---- model state --------------------------------------------------------------------
  let scene = null;
  let N = 0;
  let names = [], kinds = null, nameIdx = new Map();
  let satBuckets = [];           // arrays of satellite indices, one per colour
  let satBucketColour = [];
  let satCount = 0;
  let lat = null, lon = null, alt = null, has = null; // positions
  const links = new Map();       // key(a,b) → [a, b, kind, up, delayMs, lossPct]
  let activeFaults = [], down = new Set(), objectives = [], handovers = 0;
  let frameK = -1, frameT = 0, haveFrame = false;
  let delayLo = 0, delayHi = 1, delaySet = false; // fixed at the first frame so colours don't flicker
  const linkKey = (a, b) => (a < b ? a * 1048576 + b : b * 1048576 + a);

  // ---- view state ---------------------------------------------------------------------
  let view = 'map';
  let W = 0, H = 0, dpr = 1;
  const mapV = { lon: 0, lat: 0, z: 1 };
  const globeV = { lon: 0, lat: 20, z: 1 };
  let sx = null, sy = null, vis = null; // screen position of each node, from the last render
  let coast = [];                        // Float32Array per line, lon/lat pairs

  // ---- interaction state --------------------------------------------------------------
  let selA = -1, selB = -1;
  // A view can be linked to: #t=SECONDS&a=NODE&b=NODE&view=globe (time, path, projection).
  const linked = new URLSearchParams(location.hash.slice(1));
  let pathShown = null, pathIdx = [], pathMsg = '';
  let hover = null; // {node} or {link}
  let mouse = null;

  // ---- test hooks' bookkeeping --------------------------------------------------------
  let ready = false, drawnK = -1, drawnT = 0, bytes = 0, diffs = 0;
  const downSince = {};
  let drawn = { satellites: 0, stations: 0, platforms: 0, linksUp: 0, linksDown: 0, isl: 0, gsl: 0 };

  // ---- redraw scheduling: render only when something changed ----------------------------
  let dirty = true, panelDirty = true, tlDirty = true, rafPending = false;
  let bench = null;
  function invalidate() { dirty = true; schedule(); }
  function schedule() { if (!rafPending) { rafPending = true; requestAnimationFrame(tick); } }
  function tick(now) {
    rafPending = false;
    if (bench) {
      if (bench.last !== null) bench.intervals.push(now - bench.last);
      bench.last = now;
      const t0 = performance.now();
      render();
      bench.draws.push(performance.now() - t0);
      if (bench.draws.length >= bench.n) { finishBench(); } else { schedule(); }
    } else if (dirty) {
      render();
    }
    if (panelDirty) { panelDirty = false; updatePanel(); }
    if (tlDirty) { tlDirty = false; drawTimeline(); }
  }

  // ---- projection -----------------------------------------------------------------------
  function mapScale() { return Math.min(W / 360, H / 180) * mapV.z; }
  function mapX(lo) { return W / 2 + (lo - mapV.lon) * mapScale(); }
  function mapY(la) { return H / 2 - (la - mapV.lat) * mapScale(); }
  function globeR() { return Math.min(W, H) * 0.4 * globeV.z; } // room for orbits above the limb
  // Orthographic projection of (lat, lon) at r earth radii. Writes out[0..2] = x, y, visible.
  const P = [0, 0, 0];
  let gSin0 = 0, gCos0 = 1, gR = 1;
  function globeSetup() { gSin0 = Math.sin(globeV.lat * DEG); gCos0 = Math.cos(globeV.lat * DEG); gR = globeR(); }
  function globeProj(la, lo, r) {
    const p = la * DEG, l = (lo - globeV.lon) * DEG;
    const cp = Math.cos(p), sp = Math.sin(p), cl = Math.cos(l);
    const x = cp * Math.sin(l), y = gCos0 * sp - gSin0 * cp * cl, z = gSin0 * sp + gCos0 * cp * cl;
    P[0] = W / 2 + gR * r * x;
    P[1] = H / 2 - gR * r * y;
    // Hidden only behind the earth's disc: a satellite beyond the limb is still seen.
    P[2] = z >= 0 || r * r * (x * x + y * y) >= 1 ? 1 : 0;
    return P;
  }

  // Draws a lon/lat polyline into the current path; on the map it breaks where a step crosses
  // the antimeridian, on the globe where it goes behind the earth.
  function polyline(pts, step, swap) {
    // pts: flat array; swap=false → [lon,lat,...] (coastlines), true → [lat,lon,...] (tracks)
    let pen = false, plo = 0;
    for (let i = 0; i + 1 < pts.length; i += step) {
      const lo = swap ? pts[i + 1] : pts[i], la = swap ? pts[i] : pts[i + 1];
      if (lo === null || la === null) { pen = false; continue; }
      if (view === 'map') {
        const x = mapX(lo), y = mapY(la);
        if (pen && Math.abs(lo - plo) > 180) pen = false;
        if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        pen = true; plo = lo;
      } else {
        globeProj(la, lo, 1);
        if (!P[2]) { pen = false; continue; }
        if (pen) ctx.lineTo(P[0], P[1]); else ctx.moveTo(P[0], P[1]);
        pen = true;
      }
    }
  }

  // A segment between two nodes into the current path. On the map, one whose ends are more
  // than 180° of longitude apart goes the short way round: split at the antimeridian.
  function segment(a, b) {
    if (view === 'map') {
      const la1 = lat[a], lo1 = lon[a], la2 = lat[b], lo2 = lon[b];
      if (Math.abs(lo1 - lo2) <= 180) {
        ctx.moveTo(sx[a], sy[a]); ctx.lineTo(sx[b], sy[b]);
      } else {
        const edge = lo1 > 0 ? 180 : -180;
        const lo2u = lo2 + (lo1 > 0 ? 360 : -360);
        const f = (edge - lo1) / (lo2u - lo1), lm = la1 + f * (la2 - la1);
        ctx.moveTo(sx[a], sy[a]); ctx.lineTo(mapX(edge), mapY(lm));
        ctx.moveTo(mapX(-edge), mapY(lm)); ctx.lineTo(sx[b], sy[b]);
      }
    } else {
      ctx.moveTo(sx[a], sy[a]); ctx.lineTo(sx[b], sy[b]);
    }
  }

  // ---- hit-test grid: node screen positions bucketed per render -------------------------
  const CELL = 24;
  let gridCols = 0, gridRows = 0, gridHead = new Int32Array(0), gridNext = new Int32Array(0);
  function buildGrid() {
    gridCols = Math.max(1, Math.ceil(W / CELL)); gridRows = Math.max(1, Math.ceil(H / CELL));
    if (gridHead.length !== gridCols * gridRows) gridHead = new Int32Array(gridCols * gridRows);
    gridHead.fill(-1);
    if (gridNext.length !== N) gridNext = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      if (!vis[i]) continue;
      const cx = Math.floor(sx[i] / CELL), cy = Math.floor(sy[i] / CELL);
      if (cx < 0 || cy < 0 || cx >= gridCols || cy >= gridRows) continue;
      const c = cy * gridCols + cx;
      gridNext[i] = gridHead[c]; gridHead[c] = i;
    }
  }
  // Nearest node to (x, y); ground nodes win within their larger radius, so a station under
  // a satellite stays clickable.
  function nodeAt(x, y) {
    let best = -1, bestD = 1e9, bestG = -1, bestGD = 1e9;
    const cx = Math.floor(x / CELL), cy = Math.floor(y / CELL);
    for (let gy = cy - 1; gy <= cy + 1; gy++) {
      if (gy < 0 || gy >= gridRows) continue;
      for (let gx = cx - 1; gx <= cx + 1; gx++) {
        if (gx < 0 || gx >= gridCols) continue;
        for (let i = gridHead[gy * gridCols + gx]; i !== -1; i = gridNext[i]) {
          const d = Math.hypot(sx[i] - x, sy[i] - y);
          if (kinds[i] === SAT) { if (d < bestD) { bestD = d; best = i; } } else if (d < bestGD) { bestGD = d; bestG = i; }
        }
      }
    }
    if (bestG >= 0 && bestGD <= 10) return bestG;
    return bestD <= 6 ? best : -1;
  }
  function linkAt(x, y) {
    let best = null, bestD = 4;
    for (const l of links.values()) {
      const a = l[0], b = l[1];
      if (!vis[a] || !vis[b]) continue;
      if (view === 'map' && Math.abs(lon[a] - lon[b]) > 180) continue;
      const x1 = sx[a], y1 = sy[a], x2 = sx[b], y2 = sy[b];
      if (x < Math.min(x1, x2) - 4 || x > Math.max(x1, x2) + 4 || y < Math.min(y1, y2) - 4 || y > Math.max(y1, y2) + 4) continue;
      const dx = x2 - x1, dy = y2 - y1, len2 = dx * dx + dy * dy || 1;
      const f = Math.max(0, Math.min(1, ((x - x1) * dx + (y - y1) * dy) / len2));
      const d = Math.hypot(x1 + f * dx - x, y1 + f * dy - y);
      if (d < bestD) { bestD = d; best = l; }
    }
    return best;
  }

  // ---- rendering --------------------------------------------------------------------------
  const islBuckets = [], gslBuckets = [];
  for (let i = 0; i < NB; i++) { islBuckets.push([]); gslBuckets.push([]); }
  const downLinks = [];

  function render() {
    dirty = false;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#060913';
    ctx.fillRect(0, 0, W, H);
    const d = { satellites: 0, stations: 0, platforms: 0, linksUp: 0, linksDown: 0, isl: 0, gsl: 0 };
    if (!scene) { drawn = d; return; }
    const map = view === 'map';
    if (!map) globeSetup();

    // Earth, graticule and coastlines.
    ctx.lineWidth = 1;
    if (map) {
      ctx.fillStyle = '#0d1a33';
      ctx.fillRect(mapX(-180), mapY(90), mapX(180) - mapX(-180), mapY(-90) - mapY(90));
    } else {
      ctx.fillStyle = '#0d1a33';
      ctx.beginPath(); ctx.arc(W / 2, H / 2, gR, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = 'rgba(148,180,220,0.35)'; ctx.stroke();
    }
    ctx.strokeStyle = 'rgba(148,163,184,0.13)';
    ctx.beginPath();
    for (let lo = -180; lo <= 180; lo += 30) { const pts = []; for (let la = -90; la <= 90; la += 5) pts.push(lo, la); polyline(pts, 2, false); }
    for (let la = -60; la <= 60; la += 30) { const pts = []; for (let lo = -180; lo <= 180; lo += 5) pts.push(lo, la); polyline(pts, 2, false); }
    ctx.stroke();
    ctx.strokeStyle = 'rgba(148,180,220,0.55)';
    ctx.beginPath();
    for (const line of coast) polyline(line, 2, false);
    ctx.stroke();

    // Screen positions of every node.
    for (let i = 0; i < N; i++) {
      if (!has[i]) { vis[i] = 0; continue; }
      if (map) { sx[i] = mapX(lon[i]); sy[i] = mapY(lat[i]); vis[i] = 1; } else {
        globeProj(lat[i], lon[i], 1 + Math.max(0, alt[i]) / EARTH_KM);
        sx[i] = P[0]; sy[i] = P[1]; vis[i] = P[2];
      }
    }

    // Platforms' tracks, thin.
    if (scene.tracks) {
      ctx.strokeStyle = 'rgba(251,113,133,0.45)';
      ctx.beginPath();
      for (const k in scene.tracks) polyline(scene.tracks[k], 2, true);
      ctx.stroke();
    }

    // Jamming areas of active faults.
    ctx.beginPath();
    let anyJam = false;
    for (const fi of activeFaults) {
      const f = scene.faults[fi];
      if (f && f.area) { polyline(circlePts(f.area), 2, false); anyJam = true; }
    }
    if (anyJam) {
      ctx.fillStyle = 'rgba(255,80,60,0.12)'; ctx.fill();
      ctx.strokeStyle = 'rgba(255,90,70,0.85)'; ctx.setLineDash([5, 4]); ctx.stroke(); ctx.setLineDash([]);
    }

    // Links, bucketed by colour: one path and one stroke per bucket.
    for (let i = 0; i < NB; i++) { islBuckets[i].length = 0; gslBuckets[i].length = 0; }
    downLinks.length = 0;
    const span = delayHi - delayLo || 1;
    for (const l of links.values()) {
      if (!vis[l[0]] || !vis[l[1]]) continue;
      if (!l[3]) downLinks.push(l);
      else if (l[2] === 0) islBuckets[Math.max(0, Math.min(NB - 1, Math.floor((l[4] - delayLo) / span * NB)))].push(l);
      else gslBuckets[Math.max(0, Math.min(NB - 1, Math.floor(l[5] / LOSS_MAX * (NB - 1) + 0.5)))].push(l);
      if (l[3]) d.linksUp++; else d.linksDown++;
      if (l[2] === 0) d.isl++; else d.gsl++;
    }
    // Faint at low zoom (thousands of ISLs would hide the map), stronger as one zooms in.
    const z = map ? mapV.z : globeV.z;
    const base = links.size > 1000 ? 0.22 : 0.5;
    // One device pixel wide until zoomed in: a hairline, which is also the cheapest line to
    // rasterise (thousands of 2-px lines at devicePixelRatio 2 cost frames without a GPU).
    ctx.lineWidth = z < 3 ? 1 / dpr : 1;
    ctx.globalAlpha = Math.min(0.95, base * (1 + 0.6 * (z - 1)) * (z < 3 ? Math.sqrt(dpr) : 1));
    for (let i = 0; i < NB; i++) strokeLinks(islBuckets[i], DELAY_COLOURS[i]);
    ctx.globalAlpha = 0.9;
    ctx.lineWidth = 1.3;
    for (let i = 0; i < NB; i++) strokeLinks(gslBuckets[i], LOSS_COLOURS[i]);
    ctx.globalAlpha = 0.85;
    ctx.lineWidth = 1.2;
    ctx.setLineDash([4, 3]);
    strokeLinks(downLinks, DOWN_COLOUR);
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;

    // Links a fault takes down, highlighted.
    ctx.beginPath();
    for (const fi of activeFaults) {
      const f = scene.faults[fi];
      if (f && f.link && vis[f.link[0]] && vis[f.link[1]]) segment(f.link[0], f.link[1]);
    }
    ctx.strokeStyle = DOWN_COLOUR; ctx.lineWidth = 3.5; ctx.stroke();

    // Satellites: small squares (cheaper than arcs at thousands), one fill per colour.
    const s = Math.min(3.5, (satCount > 600 ? 1.3 : 2.2) * Math.pow(z, 0.25));
    for (let b = 0; b < satBuckets.length; b++) {
      const idx = satBuckets[b];
      ctx.beginPath();
      for (let j = 0; j < idx.length; j++) {
        const i = idx[j];
        if (!vis[i]) continue;
        ctx.rect(sx[i] - s, sy[i] - s, 2 * s, 2 * s);
        d.satellites++;
      }
      ctx.fillStyle = satBucketColour[b];
      ctx.fill();
    }
    // Ground stations (triangles) and platforms (diamonds).
    ctx.lineWidth = 1; ctx.strokeStyle = '#0b1020';
    ctx.beginPath();
    for (let i = 0; i < N; i++) {
      if (kinds[i] !== STATION || !vis[i]) continue;
      const x = sx[i], y = sy[i];
      ctx.moveTo(x, y - 5); ctx.lineTo(x + 4.5, y + 3.5); ctx.lineTo(x - 4.5, y + 3.5); ctx.closePath();
      d.stations++;
    }
    ctx.fillStyle = STATION_COLOUR; ctx.fill(); ctx.stroke();
    ctx.beginPath();
    for (let i = 0; i < N; i++) {
      if (kinds[i] !== PLATFORM || !vis[i]) continue;
      const x = sx[i], y = sy[i];
      ctx.moveTo(x, y - 5.5); ctx.lineTo(x + 4.5, y); ctx.lineTo(x, y + 5.5); ctx.lineTo(x - 4.5, y); ctx.closePath();
      d.platforms++;
    }
    ctx.fillStyle = PLATFORM_COLOUR; ctx.fill(); ctx.stroke();

    // Nodes a fault took out: a red X.
    ctx.beginPath();
    for (const i of down) {
      if (i >= N || !vis[i]) continue;
      ctx.moveTo(sx[i] - 5, sy[i] - 5); ctx.lineTo(sx[i] + 5, sy[i] + 5);
      ctx.moveTo(sx[i] + 5, sy[i] - 5); ctx.lineTo(sx[i] - 5, sy[i] + 5);
    }
    ctx.strokeStyle = DOWN_COLOUR; ctx.lineWidth = 2.2; ctx.stroke();

    // The selected path, over everything.
    if (pathIdx.length > 1) {
      ctx.beginPath();
      for (let j = 1; j < pathIdx.length; j++) {
        const a = pathIdx[j - 1], b = pathIdx[j];
        if (a >= 0 && b >= 0 && vis[a] && vis[b]) segment(a, b);
      }
      ctx.lineCap = 'round';
      ctx.strokeStyle = 'rgba(0,0,0,0.7)'; ctx.lineWidth = 7; ctx.stroke();
      ctx.strokeStyle = PATH_COLOUR; ctx.lineWidth = 3.5; ctx.stroke();
      ctx.lineCap = 'butt';
    }
    // Selection rings and the hovered item.
    ctx.beginPath();
    for (const i of [selA, selB]) if (i >= 0 && vis[i]) { ctx.moveTo(sx[i] + 9, sy[i]); ctx.arc(sx[i], sy[i], 9, 0, 2 * Math.PI); }
    ctx.strokeStyle = '#ffffff'; ctx.lineWidth = 2; ctx.stroke();
    if (hover) {
      ctx.beginPath();
      if (hover.node !== undefined && vis[hover.node]) { const i = hover.node; ctx.moveTo(sx[i] + 7, sy[i]); ctx.arc(sx[i], sy[i], 7, 0, 2 * Math.PI); }
      if (hover.link && vis[hover.link[0]] && vis[hover.link[1]]) segment(hover.link[0], hover.link[1]);
      ctx.strokeStyle = '#ffffff'; ctx.lineWidth = 2; ctx.stroke();
    }

    buildGrid();
    drawn = d;
    drawnK = frameK; drawnT = frameT;
    if (haveFrame && !ready) { ready = true; $('status').textContent = ''; }
  }
  function strokeLinks(arr, colour) {
    if (!arr.length) return;
    ctx.beginPath();
    for (let j = 0; j < arr.length; j++) segment(arr[j][0], arr[j][1]);
    ctx.strokeStyle = colour;
    ctx.stroke();
  }
  // A geodesic circle around a jamming area's centre, as [lon, lat, ...].
  const circleCache = new Map();
  function circlePts(a) {
    const key = a.latDeg + ',' + a.lonDeg + ',' + a.radiusKm;
    let pts = circleCache.get(key);
    if (pts) return pts;
    pts = [];
    const d = a.radiusKm / EARTH_KM, p1 = a.latDeg * DEG, l1 = a.lonDeg * DEG;
    for (let k = 0; k <= 72; k++) {
      const th = k / 72 * 2 * Math.PI;
      const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(th));
      const l2 = l1 + Math.atan2(Math.sin(th) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
      pts.push(((l2 / DEG + 540) % 360) - 180, p2 / DEG);
    }
    circleCache.set(key, pts);
    return pts;
  }

  function resize() {
    const r = canvas.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    W = Math.max(1, r.width); H = Math.max(1, r.height);
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    const tr = tlCanvas.getBoundingClientRect();
    tlCanvas.width = Math.round(tr.width * dpr); tlCanvas.height = Math.round(tr.height * dpr);
    clampMap();
    invalidate(); tlDirty = true;
  }
  function clampMap() {
    const m = 1 - 1 / mapV.z;
    mapV.lon = Math.max(-180 * m, Math.min(180 * m, mapV.lon));
    mapV.lat = Math.max(-90 * m, Math.min(90 * m, mapV.lat));
  }

  // ---- applying data ------------------------------------------------------------------
  function loadScene(s) {
    scene = s;
    N = s.nodes.length;
    names = s.nodes.map((n) => n.name);
    nameIdx = new Map(names.map((n, i) => [n, i]));
    kinds = new Uint8Array(N);
    lat = new Float64Array(N); lon = new Float64Array(N); alt = new Float64Array(N);
    has = new Uint8Array(N); vis = new Uint8Array(N);
    sx = new Float64Array(N); sy = new Float64Array(N);
    const shells = s.shells || [];
    satBuckets = []; satBucketColour = []; satCount = 0;
    for (let sh = 0; sh < Math.max(1, shells.length); sh++) for (let l = 0; l < 2; l++) { satBuckets.push([]); satBucketColour.push(shellColour(sh, l)); }
    const other = satBuckets.length;
    satBuckets.push([]); satBucketColour.push(OTHER_SAT);
    s.nodes.forEach((n, i) => {
      kinds[i] = n.kind === 'satellite' ? SAT : n.kind === 'platform' ? PLATFORM : STATION;
      if (kinds[i] !== SAT) return;
      satCount++;
      if (Number.isInteger(n.shell) && n.shell >= 0 && n.shell * 2 + 1 < other) satBuckets[n.shell * 2 + ((n.plane || 0) % 2)].push(i);
      else satBuckets[other].push(i);
    });
    $('scene-name').textContent = s.name;
    $('scene-source').textContent = { plan: 'plan: the model, offline', live: 'live run', cluster: 'cluster (operator)' }[s.source] || s.source;
    document.title = 'orbitnet · ' + s.name;
    buildLegend();
  }

  function setPos(i, la, lo, al) {
    if (i < 0 || i >= N) return;
    if (la === null || lo === null || la === undefined) { has[i] = 0; return; }
    lat[i] = la; lon[i] = lo; alt[i] = al || 0; has[i] = 1;
  }
  function setDown(arr) {
    down = new Set(arr);
    // downSince: the frame at which the page first applied each node as down.
    for (const i of down) { const n = names[i]; if (n !== undefined && !(n in downSince)) downSince[n] = frameK; }
    for (const n of Object.keys(downSince)) if (!down.has(nameIdx.get(n))) delete downSince[n];
  }
  function applyFrame(f) {
    frameK = f.k; frameT = f.t;
    const p = f.pos || [];
    for (let i = 0; i < N; i++) setPos(i, p[3 * i], p[3 * i + 1], p[3 * i + 2]);
    links.clear();
    for (const l of f.links || []) links.set(linkKey(l[0], l[1]), l);
    if (!delaySet) fixDelayScale();
    activeFaults = f.faults || [];
    setDown(f.down || []);
    objectives = f.objectives || [];
    handovers = f.handovers || 0;
    afterApply();
  }
  function applyDiff(f) {
    frameK = f.k; frameT = f.t;
    const p = f.pos || [];
    for (let j = 0; j + 3 < p.length; j += 4) setPos(p[j], p[j + 1], p[j + 2], p[j + 3]);
    if (f.links) {
      for (const l of f.links.set || []) links.set(linkKey(l[0], l[1]), l);
      for (const l of f.links.del || []) links.delete(linkKey(l[0], l[1]));
    }
    if (f.faults) activeFaults = f.faults;
    if (f.down) setDown(f.down);
    if (f.objectives) objectives = f.objectives;
    if (f.handovers !== undefined) handovers = f.handovers;
    if (f.events) addEvents(f.events);
    diffs++;
    afterApply();
  }
  function afterApply() {
    haveFrame = true;
    if (scene && scene.toS === null && frameT > sliderMax) { sliderMax = frameT; $('slider').max = sliderMax; }
    curT = frameT;
    if (!scrubbing) $('slider').value = frameT;
    panelDirty = true; tlDirty = true;
    // Paused on another time than the path's: no path is drawn until this time's comes.
    if (!es && !live() && pathShown && pathShown.t !== frameT) { pathShown = null; pathIdx = []; }
    invalidate();
    if (selA >= 0 && selB >= 0) schedulePath();
  }
  function fixDelayScale() {
    let lo = Infinity, hi = -Infinity;
    for (const l of links.values()) if (l[2] === 0) { lo = Math.min(lo, l[4]); hi = Math.max(hi, l[4]); }
    if (lo === Infinity) return;
    delayLo = Math.floor(lo); delayHi = Math.max(delayLo + 1, Math.ceil(hi));
    delaySet = true;
    buildLegend();
  }

  // ---- time: state fetches and the event stream ----------------------------------------
  let curT = 0, sliderMax = 0, playing = false, es = null, stateSeq = 0, scrubbing = false;
  let resumeAfterScrub = false, scrubTimer = 0, retryTimer = 0;
  const live = () => scene && scene.source === 'live';

  async function fetchState(t) {
    const seq = ++stateSeq;
    try {
      const r = await fetch('api/state?t=' + encodeURIComponent(t));
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const f = await r.json();
      if (seq === stateSeq && !es) applyFrame(f); // a newer request or a stream wins
    } catch (e) { setStatus('state: ' + e.message); }
  }
  function openStream() {
    closeStream();
    stateSeq++; // a state answer still in flight must not overwrite the stream's frames
    const url = live() ? 'api/stream' : 'api/stream?t=' + encodeURIComponent(curT) + '&speed=' + encodeURIComponent($('speed').value);
    const src = new EventSource(url);
    es = src;
    const count = (e) => { bytes += e.data.length; };
    src.addEventListener('frame', (e) => { count(e); if (es !== src) return; $('conn').textContent = ''; applyFrame(JSON.parse(e.data)); });
    src.addEventListener('diff', (e) => { count(e); if (es !== src) return; applyDiff(JSON.parse(e.data)); });
    // A live edit changed the plan: its scene (faults, nodes) is another; start over.
    src.addEventListener('scene', () => { if (es === src) location.reload(); });
    src.addEventListener('end', (e) => { count(e); if (es !== src) return; closeStream(); setPlaying(false); });
    src.onerror = () => {
      if (es !== src) return;
      closeStream();
      if (live()) {
        // The browser's own retry waits too long and says nothing: retry after 1 s, visibly.
        $('conn').textContent = 'reconnecting…';
        retryTimer = setTimeout(openStream, 1000);
      } else { setPlaying(false); setStatus('stream closed'); }
    };
  }
  function closeStream() {
    clearTimeout(retryTimer);
    if (es) { es.close(); es = null; }
  }
  function setPlaying(p) {
    playing = p;
    $('play').innerHTML = p ? '&#x275A;&#x275A; Pause' : '&#x25B6; Play';
  }
  function jump(t) {
    if (!scene || live()) return;
    const hi = scene.toS === null ? sliderMax : scene.toS;
    t = Math.max(scene.fromS, Math.min(hi, t));
    curT = t; $('slider').value = t;
    panelDirty = true;
    if (playing) openStream(); else { closeStream(); fetchState(t); }
  }
  function setStatus(s) { $('status').textContent = s; }

  function setupControls() {
    const slider = $('slider');
    if (live()) {
      $('live').hidden = false;
      openStream();
      return;
    }
    $('controls').hidden = false;
    slider.min = scene.fromS;
    sliderMax = scene.toS === null ? scene.fromS : scene.toS;
    slider.max = sliderMax;
    slider.step = scene.tickS || 1;
    $('jump').step = scene.tickS || 1;
    $('play').addEventListener('click', () => {
      if (playing) { closeStream(); setPlaying(false); } else {
        if (scene.toS !== null && curT >= scene.toS) curT = scene.fromS;
        setPlaying(true); openStream();
      }
    });
    $('speed').addEventListener('change', () => { if (playing) openStream(); });
    // Dragging: show the time at once, fetch the state when the hand rests (debounced).
    slider.addEventListener('input', () => {
      scrubbing = true;
      if (playing) { closeStream(); resumeAfterScrub = true; setPlaying(false); }
      curT = Number(slider.value); panelDirty = true; schedule();
      clearTimeout(scrubTimer);
      scrubTimer = setTimeout(() => fetchState(curT), 150);
    });
    slider.addEventListener('change', () => {
      clearTimeout(scrubTimer);
      scrubbing = false;
      const t = Number(slider.value);
      if (resumeAfterScrub) { resumeAfterScrub = false; setPlaying(true); }
      jump(t);
    });
    const step = (dir) => { if (playing) { closeStream(); setPlaying(false); } jump(curT + dir * (scene.tickS || 1)); };
    $('back').addEventListener('click', () => step(-1));
    $('fwd').addEventListener('click', () => step(1));
    $('jump').addEventListener('keydown', (e) => { if (e.key === 'Enter' && $('jump').value !== '') jump(Number($('jump').value)); });
    $('jump').addEventListener('change', () => { if ($('jump').value !== '') jump(Number($('jump').value)); });
    if (scene.source === 'cluster' && !linked.has('t')) {
      // A cluster's constellation runs now: api/state without t is its time now; play on from there.
      fetch('api/state').then((r) => r.json()).then((f) => {
        curT = f.t; slider.value = f.t; applyFrame(f); setPlaying(true); openStream();
      }).catch((e) => setStatus('state: ' + e.message));
    } else {
      const t = Number(linked.get('t'));
      if (linked.has('t') && Number.isFinite(t)) jump(t); else fetchState(scene.fromS);
    }
    for (const n of [linked.get('a'), linked.get('b')]) if (nameIdx.has(n)) selectNode(nameIdx.get(n));
  }

  // ---- path ------------------------------------------------------------------------
  let pathSeq = 0, pathLast = 0, pathTimer = 0;
  // Throttled: at most ~4 requests a second while time runs.
  function schedulePath() {
    if (pathTimer) return;
    const wait = Math.max(0, 250 - (performance.now() - pathLast));
    pathTimer = setTimeout(() => { pathTimer = 0; fetchPath(); }, wait);
  }
  async function fetchPath() {
    if (selA < 0 || selB < 0) return;
    pathLast = performance.now();
    const seq = ++pathSeq;
    const a = names[selA], b = names[selB];
    try {
      const r = await fetch('api/path?a=' + encodeURIComponent(a) + '&b=' + encodeURIComponent(b) + '&t=' + encodeURIComponent(frameT));
      const j = await r.json().catch(() => ({ error: 'HTTP ' + r.status }));
      if (seq !== pathSeq || selA < 0 || selB < 0) return;
      // The frame drawn moved on while this was asked for. Paused, ask again: a still picture
      // never shows a path of another time. Playing, show it with its time (the next one is asked for).
      if (r.ok && !live() && j.t !== frameT) {
        schedulePath();
        if (!es) return;
      }
      if (r.ok && Array.isArray(j.nodes)) {
        pathShown = { nodes: j.nodes, delayMs: j.delayMs, t: j.t };
        pathIdx = j.nodes.map((n) => (nameIdx.has(n) ? nameIdx.get(n) : -1));
        pathMsg = '';
      } else {
        pathShown = null; pathIdx = []; pathMsg = j.error || ('HTTP ' + r.status);
      }
    } catch (e) {
      if (seq !== pathSeq) return;
      pathShown = null; pathIdx = []; pathMsg = e.message;
    }
    panelDirty = true; invalidate();
  }
  function clearSelection() {
    selA = selB = -1; pathShown = null; pathIdx = []; pathMsg = ''; pathSeq++;
    panelDirty = true; invalidate();
  }
  function selectNode(i) {
    if (kinds[i] === SAT) return;
    if (selA < 0 || selB >= 0) { clearSelection(); selA = i; } else if (i !== selA) { selB = i; fetchPath(); }
    panelDirty = true; invalidate();
  }

  // ---- pointer ---------------------------------------------------------------------
  let drag = null;
  function local(e) { const r = canvas.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; }
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    const p = local(e);
    drag = { x: p.x, y: p.y, sx: p.x, sy: p.y, moved: false, id: e.pointerId };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    const p = local(e);
    mouse = p;
    if (drag) {
      const dx = p.x - drag.x, dy = p.y - drag.y;
      if (!drag.moved && Math.hypot(p.x - drag.sx, p.y - drag.sy) > 4) { drag.moved = true; canvas.classList.add('dragging'); }
      if (drag.moved) {
        if (view === 'map') { const s = mapScale(); mapV.lon -= dx / s; mapV.lat += dy / s; clampMap(); } else {
          const r = globeR() / DEG;
          globeV.lon = ((globeV.lon - dx / r + 540) % 360) - 180;
          globeV.lat = Math.max(-89, Math.min(89, globeV.lat + dy / r));
        }
        drag.x = p.x; drag.y = p.y;
        hideTip(); invalidate();
        return;
      }
    }
    updateHover(p);
  });
  canvas.addEventListener('pointerup', (e) => {
    if (!drag) return;
    const p = local(e), moved = drag.moved;
    drag = null; canvas.classList.remove('dragging');
    if (moved || !scene) return;
    const i = nodeAt(p.x, p.y);
    if (i >= 0) {
      if (kinds[i] === SAT) { hover = { node: i }; showTip(p, nodeText(i)); invalidate(); } else selectNode(i);
    } else if (!linkAt(p.x, p.y)) clearSelection();
  });
  canvas.addEventListener('pointerleave', () => { mouse = null; if (hover) { hover = null; invalidate(); } hideTip(); });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const p = local(e), f = Math.exp(-e.deltaY * 0.0015);
    if (view === 'map') {
      const s0 = mapScale();
      const lo = mapV.lon + (p.x - W / 2) / s0, la = mapV.lat - (p.y - H / 2) / s0;
      mapV.z = Math.max(1, Math.min(64, mapV.z * f));
      const s1 = mapScale();
      mapV.lon = lo - (p.x - W / 2) / s1; mapV.lat = la + (p.y - H / 2) / s1;
      clampMap();
    } else globeV.z = Math.max(0.5, Math.min(12, globeV.z * f));
    hideTip(); invalidate();
  }, { passive: false });
  window.addEventListener('keydown', (e) => { if (e.key === 'Escape') { clearSelection(); hideTip(); } });

  function updateHover(p) {
    if (!scene || !haveFrame) return;
    const i = nodeAt(p.x, p.y);
    let h = null, text = '';
    if (i >= 0) { h = { node: i }; text = nodeText(i); } else {
      const l = linkAt(p.x, p.y);
      if (l) { h = { link: l }; text = linkText(l); }
    }
    const same = (hover && h && hover.node === h.node && hover.link === h.link) || (!hover && !h);
    hover = h;
    if (h) showTip(p, text); else hideTip();
    if (!same) invalidate();
  }
  const KIND_NAMES = ['satellite', 'ground station', 'platform'];
  function nodeText(i) {
    const n = scene.nodes[i];
    let k = KIND_NAMES[kinds[i]];
    if (n.platform) k += ' (' + n.platform + ')';
    if (n.shell !== undefined && n.shell !== null) k += ' · shell ' + ((scene.shells || [])[n.shell] || n.shell) + ', plane ' + n.plane;
    let t = '<b>' + esc(n.name) + '</b>\n' + k;
    if (has[i]) t += '\n' + lat[i].toFixed(2) + '°, ' + lon[i].toFixed(2) + '°, ' + alt[i].toFixed(1) + ' km';
    if (down.has(i)) t += '\n<span style="color:#ff6b6b">down (fault)</span>';
    return t;
  }
  function linkText(l) {
    return '<b>' + esc(names[l[0]]) + ' – ' + esc(names[l[1]]) + '</b>\n' +
      (l[2] === 0 ? 'inter-satellite link' : 'ground link') + ', ' + (l[3] ? 'up' : '<span style="color:#ff6b6b">down</span>') +
      '\ndelay ' + Number(l[4]).toFixed(2) + ' ms, loss ' + Number(l[5]).toFixed(2) + ' %';
  }
  function showTip(p, html) {
    tip.innerHTML = html; tip.hidden = false;
    const x = Math.min(p.x + 14, W - tip.offsetWidth - 4), y = p.y + 14 + tip.offsetHeight > H ? p.y - tip.offsetHeight - 10 : p.y + 14;
    tip.style.left = Math.max(0, x) + 'px'; tip.style.top = Math.max(0, y) + 'px';
  }
  function hideTip() { tip.hidden = true; }
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

  $('view').addEventListener('click', () => setView(view === 'map' ? 'globe' : 'map'));
  function setView(v) {
    if (v !== 'map' && v !== 'globe') return;
    view = v;
    $('view').textContent = v === 'map' ? 'Globe' : 'Map';
    hover = null; hideTip(); invalidate();
  }

  // ---- side panel ------------------------------------------------------------------
  function utc(t) {
    const ms = Date.parse(scene.epoch) + t * 1000;
    return isNaN(ms) ? '' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace('Z', ' UTC');
  }
  function updatePanel() {
    if (!scene) return;
    const t = curT;
    const tx = 't = ' + t.toFixed(1) + ' s';
    $('time').innerHTML = esc(tx) + '<br>' + esc(utc(t)) + (haveFrame ? '<br><span class="muted">frame ' + frameK + ', ' + handovers + ' handover' + (handovers === 1 ? '' : 's') + '</span>' : '');
    $('clock').textContent = tx + '  ·  ' + utc(t);
    if (document.activeElement !== $('jump')) $('jump').value = '';

    let sats = 0, sta = 0, pla = 0, up = 0, dn = 0;
    for (let i = 0; i < N; i++) { if (kinds[i] === SAT) sats++; else if (kinds[i] === STATION) sta++; else pla++; }
    for (const l of links.values()) { if (l[3]) up++; else dn++; }
    const c = [['satellites', sats], ['links up', up], ['stations', sta], ['links down', dn], ['platforms', pla], ['nodes down', down.size]];
    let rows = '';
    for (let j = 0; j < c.length; j += 2) rows += '<tr><td>' + c[j][0] + '</td><td>' + c[j][1] + '</td><td>' + c[j + 1][0] + '</td><td>' + c[j + 1][1] + '</td></tr>';
    $('counts').innerHTML = rows;

    const pe = $('path');
    if (pathShown) {
      pe.className = '';
      // The delay first: a long path's names scroll in their own box.
      const at = pathShown.t !== frameT && !live() ? ', at t = ' + pathShown.t + ' s' : '';
      pe.innerHTML = '<div><span class="delay">' + Number(pathShown.delayMs).toFixed(2) + ' ms</span> <span class="muted">one-way, ' +
        (pathShown.nodes.length - 1) + ' hops' + at + '</span></div><div class="hops">' + pathShown.nodes.map(esc).join(' → ') + '</div>';
    } else if (pathMsg) {
      pe.className = '';
      pe.innerHTML = '<div>' + esc(names[selA]) + ' → ' + esc(names[selB]) + '</div><div class="err">' + esc(pathMsg) + '</div>';
    } else if (selA >= 0) {
      pe.className = 'muted';
      pe.textContent = names[selA] + (selB >= 0 ? ' → ' + names[selB] + ': …' : ' selected; click another ground node.');
    } else {
      pe.className = 'muted';
      pe.textContent = 'Click a ground station or platform, then another.';
    }

    const res = new Map(objectives.map((o) => [o.name, o]));
    const objs = scene.objectives || [];
    let html = '';
    const shown = new Set();
    for (const fl of scene.flows || []) {
      html += '<div class="flow">' + esc(fl.name) + ' <span class="muted">' + esc(names[fl.from] || fl.from) + ' → ' + esc(names[fl.to] || fl.to) + '</span></div>';
      for (const o of objs) if (o.flow === fl.name) { html += objRow(o, res.get(o.name)); shown.add(o.name); }
    }
    for (const o of objs) if (!shown.has(o.name)) html += objRow(o, res.get(o.name));
    $('objectives').innerHTML = html || '<span class="muted">none</span>';

    const fl = [];
    for (const fi of activeFaults) {
      const f = scene.faults[fi];
      if (!f) continue;
      let what = f.kind;
      if (f.node !== undefined) what += ' ' + names[f.node];
      if (f.link) what += ' ' + names[f.link[0]] + ' – ' + names[f.link[1]];
      if (f.area) what += ' ' + f.area.radiusKm + ' km around ' + f.area.latDeg + '°, ' + f.area.lonDeg + '°';
      fl.push('<li><b>' + esc(f.name || 'fault ' + fi) + '</b>: ' + esc(what) + ' <span class="muted">' + (f.endS === null || f.endS === undefined ? 'from ' + f.startS : f.startS + '–' + f.endS) + ' s</span></li>');
    }
    $('faults').innerHTML = fl.join('') || '<li class="muted" style="list-style:none">none</li>';
    $('faults').classList.toggle('empty', !fl.length);
    updateRecent();
  }
  function objRow(o, r) {
    const result = r ? r.result : 'PENDING';
    // The value is in the requirement's unit (ms, %, s); the requirement and the numbers behind the result on hover.
    const val = r && typeof r.value === 'number' ? (Math.round(r.value * 100) / 100).toString() : '';
    const title = (o.requirement || '') + (r && r.detail ? '\n' + r.detail : '');
    return '<div class="obj" title="' + esc(title) + '"><span class="badge ' + esc(result) + '">' + esc(result) + '</span>' +
      '<span class="name">' + esc(o.name) + '</span><span class="val">' + esc(val) + '</span></div>';
  }

  function buildLegend() {
    if (!scene) return;
    const rows = [];
    const sw = (c, label) => '<div class="row"><span class="sw" style="background:' + c + '"></span>' + label + '</div>';
    (scene.shells || []).forEach((s, i) => rows.push('<div class="row"><span class="sw" style="background:' + shellColour(i, 0) + '"></span><span class="sw" style="background:' + shellColour(i, 1) + '"></span>shell ' + esc(s) + ' <span class="muted">(planes alternate)</span></div>'));
    if (satBuckets.length && satBuckets[satBuckets.length - 1].length) rows.push(sw(OTHER_SAT, 'other satellites'));
    rows.push('<div class="row"><svg width="14" height="12"><path d="M7 1 L12.5 10 L1.5 10 Z" fill="' + STATION_COLOUR + '"/></svg>ground station</div>');
    if (scene.nodes.some((n) => n.kind === 'platform')) rows.push('<div class="row"><svg width="14" height="12"><path d="M7 0 L12 6 L7 12 L2 6 Z" fill="' + PLATFORM_COLOUR + '"/></svg>platform, with its track</div>');
    rows.push('<div class="row"><span class="lbl">ISL delay</span><span class="grad" style="background:linear-gradient(90deg,' + DELAY_COLOURS.join(',') + ')"></span></div>');
    rows.push('<div class="ends"><span style="margin-left:94px">' + delayLo + ' ms</span><span>' + delayHi + ' ms</span></div>');
    rows.push('<div class="row"><span class="lbl">ground link loss</span><span class="grad" style="background:linear-gradient(90deg,' + LOSS_COLOURS.join(',') + ')"></span></div>');
    rows.push('<div class="ends"><span style="margin-left:94px">0 %</span><span>5 %</span><span>≥ 10 %</span></div>');
    rows.push('<div class="row"><svg width="30" height="8"><line x1="0" y1="4" x2="30" y2="4" stroke="' + DOWN_COLOUR + '" stroke-width="1.5" stroke-dasharray="4 3"/></svg>link down</div>');
    rows.push('<div class="row"><svg width="30" height="8"><line x1="0" y1="4" x2="30" y2="4" stroke="' + DOWN_COLOUR + '" stroke-width="3.5"/></svg>link cut by a fault</div>');
    rows.push('<div class="row"><svg width="30" height="12"><path d="M10 1 L20 11 M20 1 L10 11" stroke="' + DOWN_COLOUR + '" stroke-width="2.2"/></svg>node down (fault)</div>');
    rows.push('<div class="row"><svg width="30" height="14"><circle cx="15" cy="7" r="6" fill="rgba(255,80,60,.15)" stroke="rgba(255,90,70,.85)" stroke-dasharray="3 2"/></svg>jamming area</div>');
    rows.push('<div class="row"><svg width="30" height="8"><line x1="0" y1="4" x2="30" y2="4" stroke="#000" stroke-width="6"/><line x1="0" y1="4" x2="30" y2="4" stroke="' + PATH_COLOUR + '" stroke-width="3"/></svg>selected path</div>');
    $('legend').innerHTML = rows.join('');
  }

  // ---- timeline ----------------------------------------------------------------------
  let events = [];
  const eventKeys = new Set();
  const EV_COLOURS = { faultStart: '#ef4444', faultEnd: '#22c55e', handover: '#64748b', convergence: '#38bdf8' };
  function addEvents(list) {
    let added = false;
    for (const e of list || []) {
      const k = e.t + '|' + e.kind + '|' + e.text;
      if (eventKeys.has(k)) continue;
      eventKeys.add(k); events.push(e); added = true;
    }
    if (added) { events.sort((a, b) => a.t - b.t); tlDirty = true; panelDirty = true; schedule(); }
  }
  async function pollTimeline() {
    try {
      const r = await fetch('api/timeline');
      const j = await r.json();
      addEvents(j.events);
      // A live run's events come with its diffs; a plan's scan ends.
      if (j.complete || live()) return;
    } catch (e) { /* the next poll will tell */ }
    setTimeout(pollTimeline, 3000);
  }
  function tlRange() {
    const lo = scene.fromS;
    let hi = scene.toS === null ? Math.max(sliderMax, frameT) : scene.toS;
    if (events.length) hi = Math.max(hi, events[events.length - 1].t);
    return [lo, Math.max(hi, lo + 1)];
  }
  function drawTimeline() {
    const w = tlCanvas.width / dpr, h = tlCanvas.height / dpr;
    tlCtx.setTransform(dpr, 0, 0, dpr, 0, 0);
    tlCtx.clearRect(0, 0, w, h);
    if (!scene) return;
    const [lo, hi] = tlRange();
    const X = (t) => 4 + (t - lo) / (hi - lo) * (w - 8);
    tlCtx.fillStyle = '#0d1428'; tlCtx.fillRect(0, 0, w, h);
    tlCtx.fillStyle = '#8391ad'; tlCtx.font = '10px system-ui, sans-serif';
    tlCtx.fillText(lo + ' s', 4, h - 3);
    const end = hi + ' s' + (scene.toS === null ? ' (so far)' : '');
    tlCtx.fillText(end, w - 4 - tlCtx.measureText(end).width, h - 3);
    // Handovers short and grey (there can be thousands), faults and convergence tall.
    for (const kind of ['handover', 'convergence', 'faultEnd', 'faultStart']) {
      tlCtx.beginPath();
      const y0 = kind === 'handover' ? h - 30 : 4, y1 = h - 14;
      for (const e of events) if (e.kind === kind) { const x = Math.round(X(e.t)) + 0.5; tlCtx.moveTo(x, y0); tlCtx.lineTo(x, y1); }
      tlCtx.strokeStyle = EV_COLOURS[kind] || '#94a3b8'; tlCtx.lineWidth = kind === 'handover' ? 1 : 2; tlCtx.stroke();
    }
    const x = X(curT);
    tlCtx.fillStyle = '#fffb8f'; tlCtx.fillRect(x - 1, 0, 2, h - 12);
  }
  function eventsNear(px) {
    const w = tlCanvas.width / dpr, [lo, hi] = tlRange();
    const X = (t) => 4 + (t - lo) / (hi - lo) * (w - 8);
    // Within 5 px, faults and convergence win over handovers (there are many more of those);
    // among the winners, the nearest pixel.
    let best = [], bestD = 5, bestMajor = false;
    for (const e of events) {
      const d = Math.abs(X(e.t) - px);
      if (d > 5) continue;
      const major = e.kind !== 'handover';
      if ((major && !bestMajor) || (major === bestMajor && d < bestD - 0.5)) { bestD = d; best = [e]; bestMajor = major; } else if (major === bestMajor && Math.abs(d - bestD) <= 0.5) best.push(e);
    }
    return best;
  }
  tlCanvas.addEventListener('mousemove', (e) => {
    if (!scene) return;
    const r = tlCanvas.getBoundingClientRect(), ev = eventsNear(e.clientX - r.left);
    tlCanvas.title = ev.slice(0, 4).map((x) => 't = ' + x.t + ' s  ' + x.text).join('\n') + (ev.length > 4 ? '\n…' : '');
  });
  tlCanvas.addEventListener('click', (e) => {
    if (!scene || live()) return;
    const r = tlCanvas.getBoundingClientRect(), ev = eventsNear(e.clientX - r.left);
    if (ev.length) jump(ev[0].t); else {
      const [lo, hi] = tlRange();
      jump(lo + (e.clientX - r.left - 4) / (r.width - 8) * (hi - lo));
    }
  });
  function updateRecent() {
    // The last few events up to now, newest first.
    let j = events.length;
    while (j > 0 && events[j - 1].t > curT + 1e-9) j--;
    const out = events.slice(Math.max(0, j - 3), j).reverse();
    $('recent').innerHTML = out.map((e) => '<li title="' + esc(e.text) + '"><span class="t">' + e.t.toFixed(0) + ' s</span><span style="color:' + (EV_COLOURS[e.kind] || '#ccc') + '">●</span> ' + esc(e.text) + '</li>').join('') ||
      '<li class="muted">no events yet</li>';
  }

  // ---- benchmark -----------------------------------------------------------------------
  function pct(a, p) { if (!a.length) return 0; const s = a.slice().sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; }
  function finishBench() {
    const b = bench; bench = null;
    const total = b.intervals.reduce((x, y) => x + y, 0);
    const r3 = (x) => Math.round(x * 1000) / 1000;
    b.resolve({
      frames: b.draws.length, drawMsP50: r3(pct(b.draws, 50)), drawMsP99: r3(pct(b.draws, 99)),
      intervalMsP50: r3(pct(b.intervals, 50)), intervalMsP99: r3(pct(b.intervals, 99)),
      fps: total ? Math.round(b.intervals.length / total * 1000 * 10) / 10 : 0,
    });
  }

  // ---- test hooks -----------------------------------------------------------------------
  window.orbitnet = {
    get ready() { return ready; },
    get drawn() { return drawn; },
    get bytes() { return bytes; },
    get diffs() { return diffs; },
    get downSince() { return downSince; },
    frame: () => ({ k: drawnK, t: drawnT }),
    linkState(a, b) {
      const i = nameIdx.get(a), j = nameIdx.get(b);
      if (i === undefined || j === undefined) return null;
      const l = links.get(linkKey(i, j));
      return l ? (l[3] ? 'up' : 'down') : null;
    },
    nodeState(name) {
      const i = nameIdx.get(name);
      if (i === undefined) return null;
      return down.has(i) ? 'down' : 'up';
    },
    screenOf(name) {
      const i = nameIdx.get(name);
      if (i === undefined || !vis || !vis[i]) return null;
      if (sx[i] < 0 || sy[i] < 0 || sx[i] > W || sy[i] > H) return null;
      const r = canvas.getBoundingClientRect();
      return { x: r.left + sx[i], y: r.top + sy[i] };
    },
    path: () => (pathShown ? { nodes: pathShown.nodes.slice(), delayMs: pathShown.delayMs, t: pathShown.t } : null),
    setView,
    bench(n) {
      return new Promise((resolve) => {
        bench = { n: Math.max(1, n | 0), draws: [], intervals: [], last: null, resolve };
        schedule();
      });
    },
  };

  // ---- start ------------------------------------------------------------------------
  new ResizeObserver(resize).observe(canvas);
  new ResizeObserver(resize).observe(tlCanvas);
  window.addEventListener('resize', resize); // devicePixelRatio changes (browser zoom) come with one
  async function start() {
    if (!coast.length) fetch('coastlines.json').then((r) => r.json()).then((c) => {
      coast = c.lines.map((l) => Float32Array.from(l));
      invalidate();
    }).catch(() => setStatus('coastlines unavailable'));
    try {
      const r = await fetch('api/scene');
      if (!r.ok) throw new Error('HTTP ' + r.status);
      loadScene(await r.json());
    } catch (e) { setStatus('scene: ' + e.message); setTimeout(start, 2000); return; }
    resize();
    setupControls();
    setView(linked.get("view") || view);
    pollTimeline();
  }
  start();
})();
