"""Ways to run the node script: on this host, in a named network namespace, in a pod."""
