"""sciserve gateway: settings, wire schemas, queue, answer checking and the HTTP app."""
