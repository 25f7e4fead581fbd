/* zlt-types.c: the names of the service protocols, as configs and logs write them */
#include "config.h"

#include "zlt-types.h"

/**
 * ZltProtocol:
 * @ZLT_PROTOCOL_TCP: TCP (0 on the wire)
 * @ZLT_PROTOCOL_UDP: UDP (1 on the wire)
 *
 * The protocol of a service, as the protocol byte of a Register.
 */

/**
 * ZltExpose:
 * @ZLT_EXPOSE_PUBLIC: a public port on the server
 * @ZLT_EXPOSE_INTERNAL: no public port: reachable only through access sessions
 *
 * Whether a service gets a public listener or is reachable only by access sessions.
 */

/**
 * ZltProxyProtocol:
 * @ZLT_PROXY_PROTOCOL_NONE: the service gets the public client's bytes only
 * @ZLT_PROXY_PROTOCOL_V1: a PROXY protocol v1 header (text) comes first
 * @ZLT_PROXY_PROTOCOL_V2: a PROXY protocol v2 header (binary) comes first
 *
 * The PROXY protocol header (HAProxy's specification) an agent writes to a service
 * before the first byte of each connection, carrying the public client's address and
 * port and the server's public address and port (PROTOCOL-v2.md §9).
 */

/**
 * ZltTunnelState:
 * @ZLT_TUNNEL_STATE_PENDING: not started
 * @ZLT_TUNNEL_STATE_CONNECTING: dialing or authenticating
 * @ZLT_TUNNEL_STATE_CONNECTED: authenticated; services can be registered
 * @ZLT_TUNNEL_STATE_DISCONNECTED: the control channel is gone (an agent retries)
 * @ZLT_TUNNEL_STATE_FAILED: given up, or refused for good
 *
 * The life of a tunnel, at either end.
 */

/**
 * ZltServiceState:
 * @ZLT_SERVICE_STATE_REGISTERING: an agent's service until the server answers, and
 *   again after each reconnect
 * @ZLT_SERVICE_STATE_REGISTERED: the server took it (a server's services always are)
 * @ZLT_SERVICE_STATE_REFUSED: the server refused it; #ZltService:last-error says why
 *
 * Where a service stands with the server.
 */

/**
 * ZltRole:
 * @ZLT_ROLE_SERVER: the public end
 * @ZLT_ROLE_AGENT: the end behind NAT that dials out
 *
 * Which end of the control channel an object describes.
 */

/**
 * zlt_protocol_to_string:
 * @protocol: a protocol
 *
 * Returns: "tcp", "udp", or "unknown"
 */
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

/**
 * zlt_protocol_from_string:
 * @str: (nullable): "tcp" or "udp"
 * @out: (out): the protocol
 *
 * Returns: %TRUE when @str names a protocol
 */
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

/**
 * zlt_proxy_protocol_to_string:
 * @proxy: a PROXY protocol version
 *
 * Returns: "none", "v1", "v2", or "unknown"
 */
const char *
zlt_proxy_protocol_to_string (ZltProxyProtocol proxy)
{
  switch (proxy)
    {
    case ZLT_PROXY_PROTOCOL_NONE:
      return "none";
    case ZLT_PROXY_PROTOCOL_V1:
      return "v1";
    case ZLT_PROXY_PROTOCOL_V2:
      return "v2";
    default:
      return "unknown";
    }
}

/**
 * zlt_proxy_protocol_from_string:
 * @str: (nullable): "none", "v1" or "v2"
 * @out: (out): the version
 *
 * Returns: %TRUE when @str names a PROXY protocol version
 */
gboolean
zlt_proxy_protocol_from_string (const char *str, ZltProxyProtocol *out)
{
  if (g_strcmp0 (str, "none") == 0)
    *out = ZLT_PROXY_PROTOCOL_NONE;
  else if (g_strcmp0 (str, "v1") == 0)
    *out = ZLT_PROXY_PROTOCOL_V1;
  else if (g_strcmp0 (str, "v2") == 0)
    *out = ZLT_PROXY_PROTOCOL_V2;
  else
    return FALSE;
  return TRUE;
}
