#!/bin/sh
# Serve /var/www on port 80. With -vv busybox httpd writes "<client>: url:<path>" and "<client>: response:<code>"
# for each request to stderr, which goes to the access log. $GREETING (from a ConfigMap in examples/web.yaml)
# is served as /greeting.txt.
# As PID 1 a process without a SIGTERM handler ignores SIGTERM and is killed only when the grace period ends;
# the shell stays PID 1 and exits on SIGTERM at once, so pods stop quickly (and their hostPort frees sooner).
mkdir -p /var/log/web
if [ -n "$GREETING" ]; then echo "$GREETING" > /var/www/greeting.txt; fi
httpd -f -vv -p 80 -h /var/www 2>>/var/log/web/access.log &
trap 'kill $!; exit 0' TERM INT
wait
