"""The merge queue: commands on its state, the pure decision, and its actions."""
