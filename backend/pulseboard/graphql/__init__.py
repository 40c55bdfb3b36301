"""GraphQL at `/api/graphql`: the REST query services, typed, behind the same permissions."""
