# minik: host-networks
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
    function Stop-Minik([string]$Id, [System.Management.Automation.ErrorCategory]$Category, [string]$Message, [string]$Target) {
        throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new($Message), $Id, $Category, $Target)
    }
    $addresses = @(Get-NetIPAddress -AddressFamily IPv4 | ForEach-Object { [string]$_.IPAddress + '/' + [string]$_.PrefixLength })
    $routes = @(Get-NetRoute -AddressFamily IPv4 | Where-Object { $_.DestinationPrefix -ne '0.0.0.0/0' } | ForEach-Object { [string]$_.DestinationPrefix })
    $result = @($addresses + $routes | Sort-Object -Unique)
    ConvertTo-Json -Compress -Depth 6 -InputObject @{ result = $result }
} catch {
    $e = $_
    ConvertTo-Json -Compress -Depth 3 -InputObject @{ error = @{
        category = [string]$e.CategoryInfo.Category
        fullyQualifiedErrorId = [string]$e.FullyQualifiedErrorId
        exception = $e.Exception.GetType().FullName
        message = [string]$e.Exception.Message
        target = [string]$e.TargetObject
    } }
}

