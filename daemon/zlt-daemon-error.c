/* zlt-daemon-error.c: D-Bus error names for ZLT_ERROR and ZLT_DAEMON_ERROR */
#include "config.h"

#include "zlayer-tunnel.h"
#include "zlt-daemon-error.h"

static const GDBusErrorEntry daemon_error_entries[] = {
  { ZLT_DAEMON_ERROR_PERMISSION_DENIED, ZLT_DBUS_ERROR_PREFIX "PermissionDenied" },
  { ZLT_DAEMON_ERROR_NOT_SUPPORTED, ZLT_DBUS_ERROR_PREFIX "NotSupported" },
  { ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED, ZLT_DBUS_ERROR_PREFIX "RoleNotConfigured" },
};

GQuark
zlt_daemon_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("zlt-daemon-error-quark", &quark, daemon_error_entries,
                                      G_N_ELEMENTS (daemon_error_entries));
  return (GQuark) quark;
}

/* "ports-exhausted" → "PortsExhausted" */
static char *
nick_to_camel_case (const char *nick)
{
  GString *name = g_string_new (NULL);
  gboolean upper = TRUE;

  for (const char *p = nick; *p != '\0'; p++)
    {
      if (*p == '-' || *p == '_')
        {
          upper = TRUE;
          continue;
        }
      g_string_append_c (name, upper ? g_ascii_toupper (*p) : *p);
      upper = FALSE;
    }
  return g_string_free (name, FALSE);
}

void
zlt_dbus_error_register (void)
{
  static gsize zlt_quark = 0;

  if (g_once_init_enter (&zlt_quark))
    {
      g_autoptr (GEnumClass) klass = g_type_class_ref (ZLT_TYPE_ERROR);
      g_autofree GDBusErrorEntry *entries = g_new0 (GDBusErrorEntry, klass->n_values);
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      gsize quark = 0;

      for (guint i = 0; i < klass->n_values; i++)
        {
          g_autofree char *camel = nick_to_camel_case (klass->values[i].value_nick);
          char *name = g_strconcat (ZLT_DBUS_ERROR_PREFIX, camel, NULL);

          g_ptr_array_add (names, name);
          entries[i].error_code = klass->values[i].value;
          entries[i].dbus_error_name = name;
        }
      /* GDBus copies the names; the quark is the one zlt_error_quark() made */
      g_dbus_error_register_error_domain (g_quark_to_string (ZLT_ERROR), &quark, entries,
                                          klass->n_values);
      g_once_init_leave (&zlt_quark, quark);
    }
  (void) zlt_daemon_error_quark ();
}
