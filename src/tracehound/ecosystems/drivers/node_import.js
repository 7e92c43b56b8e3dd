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
const loader = `
const name = process.argv[1];
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
