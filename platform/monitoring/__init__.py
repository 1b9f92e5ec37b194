"""Operations: health endpoints, Prometheus metrics and worker heartbeats. Sits at the top
beside ``config``: it reads the other apps' models, and nothing imports it."""
