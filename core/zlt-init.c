/* zlt-init.c: library-wide one-time setup */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlayer-tunnel.h"

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

/**
 * zlt_init:
 *
 * Binds the library's text domain. Safe to call more than once; every program and
 * plugin host calls it before using the library.
 *
 * The catalogs are looked up in `$ZLT_LOCALEDIR` when it is set (the build tree's
 * `po/` directory, so the tests can run uninstalled binaries in another language),
 * otherwise in the configured localedir. As the text domain is shared, this binding
 * also holds for a program's own strings.
 */
void
zlt_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      const char *localedir = g_getenv ("ZLT_LOCALEDIR");

      if (localedir == NULL || *localedir == '\0')
        localedir = LOCALEDIR;
      bindtextdomain (GETTEXT_PACKAGE, localedir);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&once, 1);
    }
}
