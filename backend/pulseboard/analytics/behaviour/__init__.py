"""What people did, from raw events: users, funnels, retention, paths and the events themselves."""
