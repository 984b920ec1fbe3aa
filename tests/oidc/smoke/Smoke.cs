// .NET smoke of the real-provider suite (test_oidc_provider.py builds it with mcs against the
// binding's sources and runs it under mono): every argument KEY=VALUE goes into the options
// dictionary unchanged, as a .NET program passes the v2 keys; then one GET of /whoami.
// Prints the status and the body, or the error.
using System;
using System.Collections.Generic;
using CloudAuth;

public static class Smoke
{
    public static int Main(string[] args)
    {
        var options = new Dictionary<string, string>();
        foreach (string arg in args)
        {
            int eq = arg.IndexOf('=');
            if (eq < 0)
            {
                Console.Error.WriteLine("smoke: expected KEY=VALUE, got " + arg);
                return 2;
            }
            options[arg.Substring(0, eq)] = arg.Substring(eq + 1);
        }
        try
        {
            using (var session = new Session(options))
            {
                Response r = session.Send("GET", "/whoami");
                Console.WriteLine(r.Status);
                Console.WriteLine(r.Text);
            }
            return 0;
        }
        catch (CloudAuthException e)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }
}
