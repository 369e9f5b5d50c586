"""GitHub webhooks: the durable inbox and turning deliveries into state."""
