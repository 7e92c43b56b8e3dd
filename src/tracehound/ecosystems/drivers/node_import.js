// Tracehound import driver for node projects: loads each direct dependency the way an application
// would (require, falling back to import() for ES modules), one child process per package so that
// everything a package does at load time is attributed to it through the environment variable the
// spec names. Prints one JSON status line per package; never fails the phase for a package that
// cannot be loaded outside its application.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const perPackageMs = (spec.timeout_s || 20) * 1000;
// In each child, CommonJS modules that live in node_modules run bracketed by marker syscalls
// naming their package (tracehound/markers.py), with that package's tag in the environment while
// they run, and so do the callbacks that code schedules (async hooks): what a dependency of the
// loaded package does at load time is attributed to it, not to the package whose require() pulled
// it in. ES modules load without brackets; host name lookups run on libuv's thread pool, outside
// any bracket, and are matched to the bracketed connect to their answer by the monitor.
// (the settings go into the code, not argv: loaded packages read process.argv)
const loader = `
const name = process.argv[1], envKey = ${JSON.stringify(spec.env_key)};
const Module = require('module'), fs = require('fs'), hooks = require('async_hooks');
const tags = new Map();
function tagOf(filename) {
  const i = filename.lastIndexOf('/node_modules/');
  if (i < 0) return null;
  const parts = filename.slice(i + 14).split('/');
  const pkg = parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0];
  const root = filename.slice(0, i + 14) + pkg;
  if (!tags.has(root)) {
    let version = '';
    try { version = String(JSON.parse(fs.readFileSync(root + '/package.json', 'utf8')).version || ''); } catch (e) {}
    tags.set(root, 'npm:' + pkg + '@' + version);
  }
  return tags.get(root);
}
function mark(kind, tag) { try { fs.closeSync(fs.openSync('/dev/null/.tracehound/' + kind + '/' + tag, 'r')); } catch (e) {} }
const open = [];  // [tag, previous env value] of the brackets running now, innermost last
function enter(tag) { open.push([tag, process.env[envKey]]); process.env[envKey] = tag; mark('b', tag); }
function leave() {
  const [tag, old] = open.pop();
  mark('e', tag);
  if (old === undefined) delete process.env[envKey]; else process.env[envKey] = old;
}
const scheduled = new Map();  // async id -> tag of the code that created it
hooks.createHook({
  init(id) { if (open.length) scheduled.set(id, open[open.length - 1][0]); },
  before(id) { const tag = scheduled.get(id); if (tag) enter(tag); },
  after(id) { if (scheduled.has(id) && open.length) leave(); },
  destroy(id) { scheduled.delete(id); },
}).enable();
const compile = Module.prototype._compile;
Module.prototype._compile = function (content, filename) {
  const tag = typeof filename === 'string' ? tagOf(filename) : null;
  if (!tag) return compile.call(this, content, filename);
  enter(tag);
  try { return compile.call(this, content, filename); } finally { leave(); }
};
function done(how) { process.stdout.write(JSON.stringify({name, loaded: how}) + "\\n"); }
try { require(name); done("require"); }
catch (e) {
  if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    import(name).then(() => done("import"), (err) => { done("error: " + String(err && err.code || err)); });
  } else { done("error: " + String(e && e.code || e)); }
}`;

for (const pkg of spec.packages) {
  const env = Object.assign({}, process.env, { [spec.env_key]: pkg.tag });
  const r = spawnSync(process.execPath, ['-e', loader, pkg.name], {
    env, cwd: process.cwd(), timeout: perPackageMs, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024,
  });
  const status = r.error && r.error.code === 'ETIMEDOUT' ? 'timeout' : (r.status === 0 ? 'ok' : `exit ${r.status}`);
  process.stdout.write(JSON.stringify({ package: pkg.name, status, out: (r.stdout || '').slice(-500) }) + '\n');
}
