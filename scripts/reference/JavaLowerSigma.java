// JavaLowerSigma.java — prints String.toLowerCase(Locale.ENGLISH) of each input line, for the
// final-sigma fixture (scripts/reference/make_ptb_sigma_fixture.py).
//
// Lines in and out are escaped so that any UTF-16 string survives: printable ASCII but '\' as
// itself, every other UTF-16 unit as backslash, u and four hex digits.
//   java scripts/reference/JavaLowerSigma.java < in.txt > out.txt
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

public class JavaLowerSigma {
    static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 5 < s.length() && s.charAt(i + 1) == 'u') {
                b.append((char) Integer.parseInt(s.substring(i + 2, i + 6), 16));
                i += 5;
            } else b.append(c);
        }
        return b.toString();
    }

    static String escape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c < 0x7F && c != '\\') b.append(c);
            else b.append(String.format("\\u%04X", (int) c));
        }
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        PrintStream out = new PrintStream(System.out, false, "US-ASCII");
        for (String line; (line = r.readLine()) != null;) out.println(escape(unescape(line).toLowerCase(Locale.ENGLISH)));
        out.flush();
    }
}
