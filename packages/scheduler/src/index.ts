// The scheduler's public surface (filled in by the framework and plugins).
export {};
