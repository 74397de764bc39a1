#!/usr/bin/env node
// Summarises V8 CPU profiles (`node --cpu-prof`): top functions by self time, by total (inclusive)
// time, and self time by source (package / node_modules / node internals).
//
//   node bench/profile.mjs <file.cpuprofile | dir> [--top 25]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map(); // node id -> µs
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (timeDeltas[i] ?? 0));
  const total = profile.endTime - profile.startTime;
  const key = (n) => {
    const f = n.callFrame;
    const where = f.url === '' ? '' : ` ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    return `${f.functionName || '(anonymous)'}${where}`;
  };
  const selfBy = new Map();
  const totalBy = new Map();
  const sourceBy = new Map();
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (const [id, us] of self) {
    const n = byId.get(id);
    const k = key(n);
    selfBy.set(k, (selfBy.get(k) ?? 0) + us);
    const src = source(n.callFrame);
    sourceBy.set(src, (sourceBy.get(src) ?? 0) + us);
    // inclusive: every distinct function on the stack
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const ck = key(byId.get(cur));
      if (seen.has(ck)) continue;
      seen.add(ck);
      totalBy.set(ck, (totalBy.get(ck) ?? 0) + us);
    }
  }
  const fmt = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return [
    `profile: ${(total / 1000).toFixed(0)} ms, ${samples.length} samples`,
    '',
    'self time by source:',
    fmt(sourceBy),
    '',
    `top ${top} by self time:`,
    fmt(selfBy),
    '',
    `top ${top} by total time (inclusive):`,
    fmt(totalBy),
  ].join('\n');
}

function shortUrl(url) {
  let p = url.replace(/^file:\/\//, '');
  if (p.startsWith(ROOT)) p = relative(ROOT, p);
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) p = p.slice(nm + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '');
  return p;
}

function source(frame) {
  const url = frame.url;
  if (url === '') {
    const n = frame.functionName;
    return n === '(garbage collector)' || n === '(idle)' || n === '(program)' || n === '(root)' ? n : '(native / V8)';
  }
  if (url.startsWith('node:')) return 'node: internals';
  const p = shortUrl(url);
  const m = /^(packages|apps)\/([^/]+)\//.exec(p);
  if (m !== null) return `${m[1]}/${m[2]}`;
  if (url.includes('node_modules/')) return `npm: ${p.split('/')[0].startsWith('@') ? p.split('/').slice(0, 2).join('/') : p.split('/')[0]}`;
  return p;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const topIdx = args.indexOf('--top');
  const top = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
  if (args.length === 0) {
    console.error('usage: node bench/profile.mjs <file.cpuprofile | dir> [--top N]');
    process.exit(2);
  }
  for (const arg of args) {
    const files = statSync(arg).isDirectory()
      ? readdirSync(arg)
          .filter((f) => f.endsWith('.cpuprofile'))
          .sort()
          .map((f) => join(arg, f))
      : [arg];
    for (const f of files) {
      console.log(`\n=== ${f}`);
      console.log(summarise(JSON.parse(readFileSync(f, 'utf8')), top));
    }
  }
}
