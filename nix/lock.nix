# Reads a parsed bitpoll.lock and picks the files for one target, with
# builtins only (no nixpkgs), so that Nix 2.8 can run it and a Go test can
# compare it with lockfile's ForTarget and Pick: same markers, same wheel
# tag priority, same errors.
#
#   (import ./lock.nix).select {
#     lock = builtins.fromTOML (builtins.readFile ../bitpoll.lock);
#     python = "3.13";
#     arch = "x86_64";
#   }
#
# returns { target, app, packages, buildPackages }: packages are the files
# to install in lock order, each { name, version, file, url, sha256, size,
# sdist }; buildPackages are the build-only files the sdist entries build
# with (empty when no sdist is selected).
let
  inherit (builtins)
    all
    any
    concatMap
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    genList
    head
    isList
    isString
    length
    listToAttrs
    map
    match
    replaceStrings
    split
    stringLength
    substring
    tail
    toString
    ;

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = replaceStrings upper lower;

  trim =
    s:
    let
      m = match "[ \t\n\r\v\f]*(.*[^ \t\n\r\v\f])?[ \t\n\r\v\f]*" s;
    in
    if m == null || head m == null then "" else head m;

  escapeRegex = replaceStrings
    [ "\\" "[" "{" "(" ")" "^" "$" "?" "*" "+" "|" "." ]
    [ "\\\\" "\\[" "\\{" "\\(" "\\)" "\\^" "\\$" "\\?" "\\*" "\\+" "\\|" "\\." ];
  hasInfix = needle: hay: match ".*${escapeRegex needle}.*" hay != null;

  toInt = s: foldl' (n: c: n * 10 + (if c == "" then 0 else builtins.fromJSON c)) 0 (
    genList (i: substring i 1 s) (stringLength s)
  );

  # PEP 440, reduced to what markers compare: plain releases such as 3.13.
  # Other versions (pre, post, dev, local, epochs) are refused rather than
  # compared differently from the Go side.
  parseRelease =
    s:
    let
      m = match "v?([0-9]+(\\.[0-9]+)*)" (toLower (trim s));
    in
    if m == null then null else map toInt (filter isString (split "\\." (head m)));
  # Any PEP 440 version, by its grammar: those that are not plain releases
  # are refused.
  looksLikeVersion =
    s:
    match (
      "v?([0-9]+!)?[0-9]+(\\.[0-9]+)*"
      + "([-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
      + "(-[0-9]+|[-_.]?(post|rev|r)[-_.]?[0-9]*)?"
      + "([-_.]?dev[-_.]?[0-9]*)?"
      + "(\\+[a-z0-9]+([-_.][a-z0-9]+)*)?"
    ) (toLower (trim s)) != null;

  # Compares two releases padded with zeros: -1, 0 or 1.
  cmpRelease =
    a: b:
    let
      n = if length a > length b then length a else length b;
      at = l: i: if i < length l then elemAt l i else 0;
      go =
        i:
        if i == n then
          0
        else if at a i < at b i then
          -1
        else if at a i > at b i then
          1
        else
          go (i + 1);
    in
    go 0;
  hasPrefix = v: p: all (i: (if i < length v then elemAt v i else 0) == elemAt p i) (genList (x: x) (length p));

  # The version comparison of `l op r` if op and r form a valid specifier
  # for a plain release l, else null (then the strings compare).
  versionCompare =
    l: op: r:
    let
      v = parseRelease l;
      raw = trim r;
      wild = match "(.*)\\.\\*" raw;
      w = parseRelease (if wild == null then raw else head wild);
      unsupported = throw "marker compares ${l} ${op} ${r}: nix/lock.nix only compares plain release versions such as \"3.13\"; re-lock with a marker that does";
    in
    if v == null then
      (if looksLikeVersion l then unsupported else null)
    else if raw == "" then
      null
    else if w == null then
      (if looksLikeVersion raw then unsupported else null)
    else if wild != null then
      (
        if op == "==" then
          hasPrefix v w
        else if op == "!=" then
          !(hasPrefix v w)
        else
          null
      )
    else if op == "==" then
      cmpRelease v w == 0
    else if op == "!=" then
      cmpRelease v w != 0
    else if op == "<" then
      cmpRelease v w < 0
    else if op == "<=" then
      cmpRelease v w <= 0
    else if op == ">" then
      cmpRelease v w > 0
    else if op == ">=" then
      cmpRelease v w >= 0
    else if op == "~=" then
      (
        if length w < 2 then
          null
        else
          cmpRelease v w >= 0 && hasPrefix v (genList (elemAt w) (length w - 1))
      )
    else
      null;

  compare =
    l: op: r:
    if op == "in" then
      hasInfix l r
    else if op == "not in" then
      !(hasInfix l r)
    else if op == "===" then
      toLower l == toLower (trim r)
    else
      let
        byVersion = versionCompare l op r;
      in
      if byVersion != null then
        byVersion
      else if op == "==" then
        l == r
      else if op == "!=" then
        l != r
      else if op == "<" then
        l < r
      else if op == "<=" then
        !(r < l)
      else if op == ">" then
        r < l
      else if op == ">=" then
        !(l < r)
      else
        false;

  # Marker variables: every accepted spelling to its canonical name.
  variables = {
    python_version = "python_version";
    python_full_version = "python_full_version";
    os_name = "os_name";
    "os.name" = "os_name";
    sys_platform = "sys_platform";
    "sys.platform" = "sys_platform";
    platform_release = "platform_release";
    platform_system = "platform_system";
    platform_version = "platform_version";
    "platform.version" = "platform_version";
    platform_machine = "platform_machine";
    "platform.machine" = "platform_machine";
    platform_python_implementation = "platform_python_implementation";
    "platform.python_implementation" = "platform_python_implementation";
    python_implementation = "platform_python_implementation";
    implementation_name = "implementation_name";
    implementation_version = "implementation_version";
    extra = "extra";
    extras = "extras";
    dependency_groups = "dependency_groups";
  };

  # The marker environment of CPython 3.<minor>.0 on glibc Linux, as
  # pep508.LinuxCPython; platform_release and platform_version are "".
  markerEnv = python: arch: {
    os_name = "posix";
    sys_platform = "linux";
    platform_system = "Linux";
    platform_machine = arch;
    python_version = python;
    python_full_version = "${python}.0";
    implementation_name = "cpython";
    implementation_version = "${python}.0";
    platform_python_implementation = "CPython";
  };

  tokenize =
    s:
    let
      parts = split "(\"[^\"]*\"|'[^']*'|[()]|===|==|~=|!=|<=|>=|<|>|[A-Za-z0-9_.]+|[ \t]+)" s;
      junk = filter (p: isString p && p != "") parts;
      toks = map head (filter isList parts);
    in
    if junk != [ ] then
      throw "invalid marker ${builtins.toJSON s}: unexpected ${builtins.toJSON (head junk)}"
    else
      filter (t: match "[ \t]+" t == null) toks;

  # Evaluates a PEP 508 marker on env with no extras selected, the way
  # pep508's Marker.Evaluate does. Structural errors always throw; the
  # result of each comparison is lazy, as the Go side short-circuits.
  evalMarker =
    env: s:
    let
      toks = tokenize s;
      n = length toks;
      tok = i: if i < n then elemAt toks i else null;
      bad = i: want: throw "invalid marker ${builtins.toJSON s}: at token ${toString i} (${builtins.toJSON (tok i)}), want ${want}";

      operand =
        i:
        let
          t = tok i;
          q = if t == null then null else match "[\"'](.*)[\"']" t;
        in
        if t == null then
          bad i "a marker variable or a quoted string"
        else if q != null then
          {
            var = null;
            value = head q;
          }
        else if variables ? ${t} then
          {
            var = variables.${t};
            value = null;
          }
        else
          bad i "a known marker variable such as python_version";

      operator =
        i:
        let
          t = tok i;
        in
        if t == "not" && tok (i + 1) == "in" then
          {
            op = "not in";
            next = i + 2;
          }
        else if
          elem t [
            "in"
            "==="
            "=="
            "~="
            "!="
            "<="
            ">="
            "<"
            ">"
          ]
        then
          {
            op = t;
            next = i + 1;
          }
        else
          bad i "a comparison operator";

      resolve = o: if o.var == null then o.value else if o.var == "extra" then "" else env.${o.var} or "";
      isSet = v: v == "extras" || v == "dependency_groups";

      comparison =
        i:
        let
          left = operand i;
          o = operator (i + 1);
          right = operand o.next;
          ok =
            if left.var == null && right.var == null then
              bad i "one side to be a marker variable"
            else if left.var != null && right.var != null then
              bad i "one side to be a quoted string"
            else if isSet left.var || (isSet right.var && o.op != "in" && o.op != "not in") then
              bad i "\"in\" or \"not in\" with a set variable"
            else
              true;
        in
        {
          i = if ok then o.next + 1 else i;
          v =
            if isSet right.var then
              o.op == "not in"
            else
              compare (resolve left) o.op (resolve right);
        };

      atom =
        i:
        if tok i == "(" then
          let
            r = orExpr (i + 1);
          in
          if tok r.i == ")" then
            {
              i = r.i + 1;
              inherit (r) v;
            }
          else
            bad r.i "\")\""
        else
          comparison i;

      chain =
        word: sub: combine: i:
        let
          go =
            r:
            if tok r.i == word then
              let
                b = sub (r.i + 1);
              in
              go {
                inherit (b) i;
                v = combine r.v b.v;
              }
            else
              r;
        in
        go (sub i);
      andExpr = chain "and" atom (a: b: a && b);
      orExpr = chain "or" andExpr (a: b: a || b);
      result = orExpr 0;
    in
    if result.i != n then bad result.i "\"and\", \"or\" or the end" else result.v;

  # Wheel tags of a target in priority order, as wheeltag.Target.Tags.
  platforms =
    glibcMinor: arch:
    let
      oldest = if arch == "x86_64" then 5 else 17;
      legacy = {
        "17" = "manylinux2014";
        "12" = "manylinux2010";
        "5" = "manylinux1";
      };
      one =
        m:
        [ "manylinux_2_${toString m}_${arch}" ]
        ++ (if legacy ? ${toString m} then [ "${legacy.${toString m}}_${arch}" ] else [ ]);
    in
    if glibcMinor < oldest then [ ] else concatMap one (genList (i: glibcMinor - i) (glibcMinor - oldest + 1));

  tags =
    minor: glibcMinor: arch:
    let
      plats = platforms glibcMinor arch;
      cp = "cp3${toString minor}";
      with_ = py: abi: ps: map (p: "${py}-${abi}-${p}") ps;
      older = genList (i: minor - 1 - i) (if minor >= 3 then minor - 2 else 0); # minor-1 down to 2
      pys = [
        "py3${toString minor}"
        "py3"
      ]
      ++ genList (i: "py3${toString (minor - 1 - i)}") minor;
    in
    with_ cp cp plats
    ++ with_ cp "abi3" plats
    ++ with_ cp "none" plats
    ++ concatMap (m: with_ "cp3${toString m}" "abi3" plats) older
    ++ concatMap (py: with_ py "none" plats) pys
    ++ [ "${cp}-none-any" ]
    ++ map (py: "${py}-none-any") pys;

  # The tags a wheel file name declares, or null if the name is not a
  # valid wheel name (such a wheel is never picked).
  wheelTags =
    fn:
    let
      stem = match "(.*)\\.whl" fn;
      parts = filter isString (split "-" (head stem));
      n = length parts;
      name = head parts;
      validName =
        match "[A-Za-z0-9]([A-Za-z0-9._]*[A-Za-z0-9])?" name != null && match ".*__.*" name == null;
      validVersion = match "[A-Za-z0-9._!+]+" (elemAt parts 1) != null;
      validBuild = n == 5 || match "[0-9][A-Za-z0-9_.]*" (elemAt parts 2) != null;
      pieces = s: filter isString (split "\\." (toLower s));
      pys = pieces (elemAt parts (n - 3));
      abis = pieces (elemAt parts (n - 2));
      plats = pieces (elemAt parts (n - 1));
      validTag = all (p: match "[a-z0-9_]+" p != null) (pys ++ abis ++ plats);
    in
    if stem == null || (n != 5 && n != 6) then
      null
    else if !(validName && validVersion && validBuild && validTag) then
      null
    else
      concatMap (py: concatMap (abi: map (plat: "${py}-${abi}-${plat}") plats) abis) pys;

  fileOf = pkg: f: sdist: {
    inherit (pkg) name version;
    inherit sdist;
    file = f.name;
    inherit (f) url size;
    sha256 = f.hashes.sha256;
  };

  # The app pin of a parsed lock: the source's URL, commit, git tree and,
  # when the lock has it, the NAR hash (null otherwise).
  appPin = lock: {
    inherit (lock.app) name version url;
    commit = lock.app.commit or "";
    tree = lock.app.tree;
    narHash = lock.app.nar-hash or null;
    requirements = lock.app.requirements or "requirements.txt";
  };

  # The Nix systems the lock can serve: one per CPU of its targets
  # ("cp313-x86_64" is x86_64-linux), in the order of first mention.
  systems =
    lock:
    foldl' (acc: s: if elem s acc then acc else acc ++ [ s ]) [ ] (
      map (
        t:
        let
          m = match "cp3[0-9]+-(.+)" t;
        in
        if m == null then
          throw "bitpoll.lock: target ${builtins.toJSON t} is not cp3<minor>-<cpu>, like \"cp313-x86_64\""
        else
          "${head m}-linux"
      ) (lock.targets or [ ])
    );

  select =
    {
      lock,
      python,
      arch,
    }:
    let
      pyMatch = match "3\\.([0-9]+)" python;
      minor =
        if pyMatch == null then
          throw "invalid python version ${builtins.toJSON python}: want 3.<minor>, like \"3.13\""
        else
          toInt (head pyMatch);
      target = "cp3${toString minor}-${arch}";
      glibc = match "2\\.([0-9]+)" (lock.glibc or "");
      glibcMinor =
        if glibc == null then
          throw "bitpoll.lock: glibc ${builtins.toJSON (lock.glibc or null)} is not 2.<minor>, like \"2.28\""
        else
          toInt (head glibc);
      rank = listToAttrs (
        genList (i: {
          name = elemAt allTags i;
          value = i;
        }) (length allTags)
      );
      allTags = tags minor glibcMinor arch;
      env = markerEnv "3.${toString minor}" arch;

      # The best wheel by tag rank, ties to the lexically first name; else
      # the sdist where the lock marks it for this target (a package with
      # no wheels everywhere, one with wheels on the targets its
      # sdist-targets name); else null.
      pick =
        pkg:
        let
          ranked = concatMap (
            w:
            let
              ts = wheelTags w.name;
              rs = map (t: rank.${t}) (filter (t: rank ? ${t}) (if ts == null then [ ] else ts));
            in
            if rs == [ ] then
              [ ]
            else
              [
                {
                  r = foldl' (a: b: if b < a then b else a) (head rs) (tail rs);
                  inherit w;
                }
              ]
          ) (pkg.wheels or [ ]);
          best = foldl' (
            a: b: if a == null || b.r < a.r || (b.r == a.r && b.w.name < a.w.name) then b else a
          ) null ranked;
        in
        if best != null then
          fileOf pkg best.w false
        else if sdistFor pkg then
          fileOf pkg pkg.sdist true
        else
          null;

      sdistFor =
        pkg:
        pkg ? sdist
        && (
          if (pkg.sdist-targets or [ ]) == [ ] then (pkg.wheels or [ ]) == [ ] else elem target pkg.sdist-targets
        );

      wanted = filter (
        p: !(p.build-only or false) && (!(p ? marker) || p.marker == "" || evalMarker env p.marker)
      ) (lock.packages or [ ]);
      picked = map (p: {
        pkg = p;
        file = pick p;
      }) wanted;
      missing = map (x: "${x.pkg.name} ${x.pkg.version}") (filter (x: x.file == null) picked);
      packages = map (x: x.file) picked;
      buildPackages = filter (f: f != null) (map pick (filter (p: p.build-only or false) (lock.packages or [ ])));
    in
    if !(elem target (lock.targets or [ ])) then
      throw "bitpoll.lock has no target ${target} (it has ${concatStringsSep ", " (lock.targets or [ ])}): re-lock with --target ${target}, or use a Python the lock covers"
    else if missing != [ ] then
      throw "select packages for ${target}: no wheel and no sdist for ${concatStringsSep ", " missing} (re-lock with this target)"
    else
      {
        inherit target;
        app = appPin lock;
        inherit packages;
        buildPackages = if any (f: f.sdist) packages then buildPackages else [ ];
      };
in
{
  inherit
    appPin
    systems
    select
    evalMarker
    markerEnv
    tags
    wheelTags
    ;
}
