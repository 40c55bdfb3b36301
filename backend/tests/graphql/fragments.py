"""Fragments that select every field of each answer, so that it can be compared whole with REST."""

RANGE = "fragment RangeFields on Range { from to timezone }"
NUMBER = "value previous change"
TOP_EVENT = "name count"
OVERVIEW = f"""
fragment OverviewFields on Overview {{
  range {{ ...RangeFields }} compare {{ ...RangeFields }} source
  totalEvents {{ {NUMBER} }} uniqueUsers {{ {NUMBER} }} uniqueSessions {{ {NUMBER} }}
  pageviews {{ {NUMBER} }} bounceRate {{ {NUMBER} }} avgSessionDuration {{ {NUMBER} }}
  topEvent {{ value {{ {TOP_EVENT} }} previous {{ {TOP_EVENT} }} }}
}}
"""
SERIES = "key other data { timestamp value }"
TIMESERIES = f"""
fragment TimeseriesFields on Timeseries {{
  range {{ ...RangeFields }} compare {{ ...RangeFields }} source interval metric
  series {{ {SERIES} }} previous {{ {SERIES} }}
}}
"""
BREAKDOWN = """
fragment BreakdownFields on Breakdown {
  range { ...RangeFields } compare { ...RangeFields } source by metric
  rows { value count uniqueUsers uniqueSessions previous change }
  other { values count }
}
"""
SESSION_NUMBERS = "sessions bounceRate avgDuration pagesPerSession"
SESSIONS = f"""
fragment SessionsFields on Sessions {{
  range {{ ...RangeFields }} compare {{ ...RangeFields }} source {SESSION_NUMBERS}
  durationDistribution {{ band sessions }} pagesDistribution {{ pages sessions }}
  previous {{ {SESSION_NUMBERS} }}
}}
"""
PROJECT = """
fragment ProjectFields on Project {
  id organizationId name domains timezone retentionDays writeKeyPrefix createdAt updatedAt
}
"""
