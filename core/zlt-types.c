/* zlt-types.c: the names of the service protocols, as configs and logs write them */
#include "config.h"

#include "zlt-types.h"

const char *
zlt_protocol_to_string (ZltProtocol protocol)
{
  switch (protocol)
    {
    case ZLT_PROTOCOL_TCP:
      return "tcp";
    case ZLT_PROTOCOL_UDP:
      return "udp";
    default:
      return "unknown";
    }
}

gboolean
zlt_protocol_from_string (const char *str, ZltProtocol *out)
{
  if (g_strcmp0 (str, "tcp") == 0)
    *out = ZLT_PROTOCOL_TCP;
  else if (g_strcmp0 (str, "udp") == 0)
    *out = ZLT_PROTOCOL_UDP;
  else
    return FALSE;
  return TRUE;
}
