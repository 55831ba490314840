// The app server: one worker per CPU behind the cluster master, listening on $PORT.
const cluster = require('cluster');
const http = require('http');
const os = require('os');
if (cluster.isPrimary) {
  for (let i = 0; i < os.cpus().length; i++) cluster.fork();
} else {
  http.createServer((req, res) => res.end('ponyfoo ' + process.env.NODE_ENV + '\n')).listen(process.env.PORT || 3000);
}
