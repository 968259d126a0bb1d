"""kit: small pieces every app may import; imports no opsdesk app."""
