# minik: health
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
    function Stop-Minik([string]$Id, [System.Management.Automation.ErrorCategory]$Category, [string]$Message, [string]$Target) {
        throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new($Message), $Id, $Category, $Target)
    }
    $principal = [System.Security.Principal.WindowsPrincipal]::new([System.Security.Principal.WindowsIdentity]::GetCurrent())
    $vmms = Get-Service -Name vmms -ErrorAction SilentlyContinue
    $service = ''
    if ($vmms) { $service = [string]$vmms.Status }
    $result = @{
        administrator = $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)
        hyperVAdministrator = $principal.IsInRole([System.Security.Principal.SecurityIdentifier]::new('S-1-5-32-578'))
        module = [bool](Get-Module -ListAvailable -Name Hyper-V)
        service = $service
    }
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

